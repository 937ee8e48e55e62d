"""The book's building blocks: report text, figures, the interactive explorer, table pages,
notebook parameter guards and the offline MathJax extension."""
