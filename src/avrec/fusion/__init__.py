"""avrec.fusion."""
