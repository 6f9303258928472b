"""The book: every chapter has a current executed page with its record, and the HTML builds cleanly and
works offline (no script, stylesheet, font or image from outside the book)."""

import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from c2f.book.chapters import PROJECT_ROOT, chapter_paths
from c2f.book.runner import BOOK_CHAPTERS, can_run_here, code_changes, is_stale

CHAPTERS = chapter_paths()


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_page_is_the_record_of_the_current_source_and_code(chapter):
    """A committed page matches its chapter source, its own profile's parameters and the c2f code it ran,
    and came from committed code. A page of a GPU profile on a machine without one may lag the code (it
    cannot be re-made here; `c2f list` and the page itself say so), but not the chapter or its parameters."""
    record_file = BOOK_CHAPTERS / f"{chapter.stem}.json"
    assert record_file.exists(), f"no page for {chapter.stem}: run `make book`"
    record = json.loads(record_file.read_text())
    assert record["profile"] in ("default", "gpu", "full"), "the book shows default or GPU runs, not smoke"
    reasons = is_stale(chapter)
    if not can_run_here(record["profile"]):
        reasons = [r for r in reasons if r not in code_changes(record)]
    assert not reasons, f"the page of {chapter.stem} is stale: {'; '.join(reasons)} (re-run it: `make book`)"
    assert record["metrics"], "a chapter page must record its metrics"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_page_has_no_errors_and_every_code_cell_ran(chapter):
    nb = nbformat.read(BOOK_CHAPTERS / f"{chapter.stem}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count for c in code), "every code cell of a page was executed"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"error outputs in {chapter.stem}: {[e.ename for e in errors]}"


EXTERNAL = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)  # http://, https://, //host
CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]+)|@import\s+['"]([^'"]+)""", re.IGNORECASE)


class _Resources(HTMLParser):
    """What a page loads: script src, link href (stylesheets, fonts, icons, preloads), img/source/iframe
    src, and url(...) / @import in inline styles."""

    def __init__(self):
        super().__init__()
        self.urls, self._in_style = [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "link" and attrs.get("href") and attrs.get("rel") not in ("canonical", "next", "prev", "index",
                                                                           "search", "author", "license"):
            self.urls.append(attrs["href"])
        elif tag in ("script", "img", "source", "iframe", "embed", "audio", "video") and attrs.get("src"):
            self.urls.append(attrs["src"])
        self.urls += [u for m in CSS_URL.findall(attrs.get("style") or "") for u in m if u]
        self._in_style = tag == "style"

    def handle_data(self, data):
        if self._in_style:
            self.urls += [u for m in CSS_URL.findall(data) for u in m if u]

    def handle_endtag(self, tag):
        self._in_style = False


def external_resources(html_dir: Path) -> list[str]:
    """`file: url` for every resource a built page or stylesheet would fetch from outside the book."""
    found = []
    for page in sorted(html_dir.rglob("*.html")):
        parser = _Resources()
        parser.feed(page.read_text(errors="replace"))
        found += [f"{page.relative_to(html_dir)}: {u}" for u in parser.urls if EXTERNAL.match(u)]
    for css in sorted(html_dir.rglob("*.css")):
        urls = [u for m in CSS_URL.findall(css.read_text(errors="replace")) for u in m if u]
        found += [f"{css.relative_to(html_dir)}: {u}" for u in urls if EXTERNAL.match(u)]
    return found


def test_the_offline_check_finds_what_a_page_would_fetch(tmp_path):
    """The scan itself: a CDN script, a remote stylesheet, a font in CSS and an inline style are found;
    local files, data: URIs and plain links are not."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "page.html").write_text(
        '<html><head><script src="https://cdn.example/mathjax.js"></script><script src="_static/a.js"></script>'
        '<link rel="stylesheet" href="//fonts.example/css"><link rel="stylesheet" href="_static/b.css">'
        '<link rel="canonical" href="https://book.example/page.html"><style>@import "http://x.example/c.css";</style>'
        '</head><body><a href="https://arxiv.org/abs/1312.6114">paper</a><img src="data:image/png;base64,AAA">'
        '<div style="background: url(\'https://img.example/bg.png\')"></div></body></html>')
    (tmp_path / "style.css").write_text('@font-face { src: url("https://fonts.example/f.woff2"); }\n'
                                        'a { background: url(local.png) }')
    assert external_resources(tmp_path) == [
        "sub/page.html: https://cdn.example/mathjax.js", "sub/page.html: //fonts.example/css",
        "sub/page.html: http://x.example/c.css", "sub/page.html: https://img.example/bg.png",
        "style.css: https://fonts.example/f.woff2"]


@pytest.fixture(scope="module")
def built_book(tmp_path_factory):
    """jupyter-book 1.x builds the HTML offline, warnings (broken references, missing citations) as errors."""
    out = tmp_path_factory.mktemp("book")
    jb = Path(sys.executable).parent / "jupyter-book"
    result = subprocess.run(
        [str(jb), "build", str(PROJECT_ROOT), "--path-output", str(out), "--warningiserror", "--nitpick",
         "--keep-going"], capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return out / "_build" / "html"


def test_book_builds_without_warnings(built_book):
    html = built_book
    for chapter in CHAPTERS:
        page = html / "book" / "chapters" / f"{chapter.stem}.html"
        assert page.exists(), f"{page} missing"
        assert "Record card" in page.read_text()
    assert (html / "book" / "references.html").exists()


def test_the_built_book_works_offline_and_says_which_pages_are_stale(built_book):
    html = built_book
    assert not external_resources(html), "the book loads from outside itself:\n" + "\n".join(
        external_resources(html))
    mathjax = html / "_static" / "mathjax" / "tex-chtml.js"
    assert mathjax.exists(), "MathJax is bundled (sphinx-mathjax-offline)"
    for chapter in CHAPTERS:
        page = (html / "book" / "chapters" / f"{chapter.stem}.html").read_text()
        assert "_static/mathjax/tex-chtml.js" in page, f"{chapter.stem} does not load the bundled MathJax"
        reasons = is_stale(chapter)
        assert ("This page is stale" in page) == bool(reasons), f"{chapter.stem}: stale {reasons}"
        assert all(reason in page for reason in reasons)


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run MathJax outside a browser")
@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_the_bundled_mathjax_typesets_every_formula_of_a_page(built_book, chapter):
    """The MathJax copied into the book (not a CDN) typesets every math element of the page without an error:
    what a reader offline sees rendered. (Node with MathJax's own lite DOM stands in for a browser.)"""
    page = built_book / "book" / "chapters" / f"{chapter.stem}.html"
    mathjax = built_book / "_static" / "mathjax"
    assert (mathjax / "output" / "chtml" / "fonts" / "woff-v2").is_dir(), "MathJax's fonts are bundled too"
    result = subprocess.run(["node", str(Path(__file__).with_name("mathjax_typeset.js")), str(mathjax), str(page)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    math_elements = len(re.findall(r'class="math[ "]', page.read_text()))
    assert counts["errors"] == 0 and counts["typeset"] >= max(math_elements, 1), counts
