"""``python -m c2f``: the command line of the book, :mod:`c2f.book.cli`."""

import sys

from c2f.book.cli import main

if __name__ == "__main__":
    sys.exit(main())
