"""Mailbox sync: bounces, delays, replies and auto-replies read from the bounce folder."""
