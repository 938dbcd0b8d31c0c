"""Neural models (torch): two-tower, sequential, Mult-VAE, text fine-tuning, and their shared
towers."""
