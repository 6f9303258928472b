"""c2f: coarse-to-fine perceptual decomposition with deep generative models — the book's code."""

__version__ = "0.1.0"

from c2f.book.records import Run  # noqa: E402  (the one name every chapter needs)

__all__ = ["Run", "__version__"]
