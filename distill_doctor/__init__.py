"""distill_doctor: a training-health doctor for knowledge-distillation runs.

Importing the package is cheap on purpose: nothing here pulls in torch or transformers, so
`doctor check` and `doctor postmortem` start as fast as a linter should.
"""

__version__ = "0.1.0"
