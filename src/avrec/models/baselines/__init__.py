"""Baselines: popularity, item-kNN, EASE, ALS/BPR (implicit), biases, explicit ratings."""
