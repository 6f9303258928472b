"""The book's Sphinx extension: a stale chapter page opens with a warning that lists why; a current page
and a page that is no chapter page are left alone. Built with Sphinx itself on a one-page project."""

from __future__ import annotations

import json

import pytest

import c2f.book.chapters
from c2f.book.chapters import resolve_parameters
from c2f.book.records import code_hashes
from c2f.book.runner import record_path, source_hash
from c2f.book.stale_pages import stale_warning

CHAPTER = '# %% tags=["parameters"]\nprofile = "default"\nseed = 0\n'


@pytest.fixture
def book(tmp_path, monkeypatch):
    """A Sphinx project with one chapter page book/chapters/99_tiny (a current record of it) and its source."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    (notebooks / "99_tiny.py").write_text(CHAPTER)
    (notebooks / "99_tiny.yml").write_text("full:\n  seed: 1\nschema:\n  profile: {type: str}\n  seed: {type: seed}\n")
    monkeypatch.setattr(c2f.book.chapters, "NOTEBOOKS", notebooks)
    src = tmp_path / "src"
    pages = src / "book" / "chapters"
    pages.mkdir(parents=True)
    (src / "conf.py").write_text("extensions = ['c2f.book.stale_pages']\n")
    (src / "index.rst").write_text("Book\n====\n\n.. toctree::\n\n   book/chapters/99_tiny\n")
    (pages / "99_tiny.rst").write_text("Tiny chapter\n============\n\nSome text.\n")
    (pages / "99_tiny.ipynb").write_text("{}")  # the page a record belongs to
    params = resolve_parameters("99_tiny", "full")  # a GPU profile
    record = {"profile": "full", "params": params, "source_sha256": source_hash("99_tiny", params),
              "git_commit": "abc", "dirty": [], "code_sha256": code_hashes()}
    record_path("99_tiny", pages).write_text(json.dumps(record))
    return src


def build(src, out):
    from sphinx.application import Sphinx

    app = Sphinx(str(src), str(src), str(out), str(out / ".doctrees"), "html", status=None, warning=None,
                 freshenv=False)
    app.build()
    return (out / "book" / "chapters" / "99_tiny.html").read_text()


def test_a_stale_page_says_why_and_a_rebuild_notices(book):
    """No warning on a current page; once the code changes, the warning lists the changed file, also in a
    later build where the page itself did not change (the extension re-reads chapter pages every build)."""
    pages = book / "book" / "chapters"
    record_file = record_path("99_tiny", pages)
    record = json.loads(record_file.read_text())
    out = book.parent / "html"
    assert stale_warning("99_tiny", pages) is None
    assert "This page is stale" not in build(book, out)

    record["code_sha256"] = {**record["code_sha256"], "c2f/book/records.py": "0" * 64}
    record_file.write_text(json.dumps(record))
    html = build(book, out)
    assert "This page is stale" in html and "c2f/book/records.py changed" in html
    assert "needs a GPU" in html or "Re-make it" in html
    assert stale_warning("98_no_chapter", pages) is None
    assert html.index("Tiny chapter") < html.index("This page is stale") < html.index("Some text.")
