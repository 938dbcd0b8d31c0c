"""Re-ranking of scored lists: diversity (MMR), business rules, explanations."""
