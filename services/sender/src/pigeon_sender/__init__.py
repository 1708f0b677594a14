"""pigeon_sender: consumes send-chunk jobs, sends over SMTP, files copies in IMAP Sent."""
