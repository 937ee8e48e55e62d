"""Analysis, read-only over the results store: the paper's reference numbers, the budget rule, the
regime, the claims and their verdicts, attack strength."""
