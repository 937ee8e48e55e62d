"""rll: reproducible companion to *A Closer Look at Accuracy vs. Robustness*
(Yang, Rashtchian, Zhang, Salakhutdinov, Chaudhuri; NeurIPS 2020).

One concept per module; imports only point down (see ``STYLE.md`` in the design notes):
``data``, ``models``, ``attacks``, ``separation``, ``theory`` and ``results`` import nothing
else from rll; ``losses`` and ``metrics`` build on ``attacks``; ``train`` on all of those;
``experiments`` and ``cli`` sit on top.
"""

__version__ = "0.1.0"
