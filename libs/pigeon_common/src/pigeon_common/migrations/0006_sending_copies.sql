-- Sent copies as facts of their own (sent_copies.filed / sent_copies.pending): a message
-- whose copy could not be filed yet is marked, so the campaign can say how many wait.
ALTER TABLE messages ADD COLUMN copy_pending boolean NOT NULL DEFAULT false;
