"""Analysis, read-only over the results store: our tables beside the paper's (``frames``), what
the store holds (``status``), the budget rule (``budget``), the paper's regime (``regime``), what
a verdict reads (``evidence``), the claims and their verdicts (``claims``), attack strength and
the GR diagnosis."""
