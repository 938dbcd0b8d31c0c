"""Models trained with user-level differential privacy (``dp-ease``, ``dp-popularity``, and
``dp-two-tower`` by DP-SGD), their accountant and the contribution bounding they share; see
docs/privacy.md."""
