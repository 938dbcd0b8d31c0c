"""avrec.index."""
