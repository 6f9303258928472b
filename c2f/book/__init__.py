"""The machinery that makes the book, apart from its science: chapter sources and profiles (``chapters``), the
record a chapter writes (``records``: ``c2f.Run``), executing one chapter (``runner``) or many (``executors``),
comparing metrics with their tolerances (``compare``), the stale-page warning of the built book
(``stale_pages``) and the command line (``cli``, run as ``python -m c2f``).

The science modules of ``c2f`` never import this package, except the ``Run`` a chapter starts with
(``c2f.book.records.Run``, exported as ``c2f.Run``); ``tests/unit/test_imports.py`` checks it. This file
imports nothing: a chapter's kernel imports it with the record, and its hash joins the page's code hashes.
"""
