"""Models trained with user-level differential privacy (``dp-ease``, ``dp-popularity``), their
accountant and the contribution bounding they share; see docs/privacy.md."""
