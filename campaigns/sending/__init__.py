"""Sending: building each recipient's MIME message (and, with the next steps of the sending
issue, dispatch, the batch workers and the SMTP pool)."""
