"""avrec.service."""
