"""avrec.storage."""
