"""Re-ranking of scored lists: diversity (MMR, DPP), calibration to a person's genres, a
popularity penalty (one entry point: ``avrec.rerank.apply.rerank``), business rules
(``avrec.rerank.rules``), explanations."""
