"""The book: every chapter has a current executed page with its record, and the HTML builds cleanly."""

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from c2f.chapters import PROJECT_ROOT, chapter_paths
from c2f.runner import BOOK_CHAPTERS, is_stale

CHAPTERS = chapter_paths()


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_page_is_the_record_of_the_current_source(chapter):
    record_file = BOOK_CHAPTERS / f"{chapter.stem}.json"
    assert record_file.exists(), f"no page for {chapter.stem}: run `make book`"
    record = json.loads(record_file.read_text())
    assert record["profile"] in ("default", "gpu", "full"), "the book shows no smoke runs"
    assert not is_stale(chapter, record["profile"]), f"{chapter.stem} changed since its page was executed"
    assert record["metrics"], "a chapter page must record its metrics"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_page_has_no_errors_and_every_code_cell_ran(chapter):
    nb = nbformat.read(BOOK_CHAPTERS / f"{chapter.stem}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count for c in code), "every code cell of a page was executed"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"error outputs in {chapter.stem}: {[e.ename for e in errors]}"


def test_book_builds_without_warnings(tmp_path):
    """jupyter-book 1.x builds the HTML offline, warnings (broken references, missing citations) as errors."""
    jb = Path(sys.executable).parent / "jupyter-book"
    result = subprocess.run(
        [str(jb), "build", str(PROJECT_ROOT), "--path-output", str(tmp_path), "--warningiserror", "--nitpick",
         "--keep-going"], capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    html = tmp_path / "_build" / "html"
    for chapter in CHAPTERS:
        page = html / "book" / "chapters" / f"{chapter.stem}.html"
        assert page.exists(), f"{page} missing"
        assert "Record card" in page.read_text()
    assert (html / "book" / "references.html").exists()
