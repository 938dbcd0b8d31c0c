"""Feedback events and the online per-user state they update (no retraining)."""
