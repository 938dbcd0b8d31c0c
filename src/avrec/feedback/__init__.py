"""avrec.feedback."""
