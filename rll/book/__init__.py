"""The book's building blocks: report text and tables (``report``), the intro's findings,
figures (``plots``, ``theorem_plots``), the table pages (``table_page``), the JupyterLab explorer,
notebook parameter guards (``parameters``) and the offline MathJax extension (``mathjax``)."""
