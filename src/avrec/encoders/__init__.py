"""avrec.encoders."""
