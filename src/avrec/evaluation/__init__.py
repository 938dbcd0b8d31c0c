"""avrec.evaluation."""
