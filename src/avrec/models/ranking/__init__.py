"""Learning-to-rank over several models' scores (hybrid-ltr)."""
