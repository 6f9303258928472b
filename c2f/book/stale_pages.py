"""Sphinx extension of the book (``_config.yml``): a chapter page whose record is stale says so at its top.

The book's test fails on a stale page, with one exception: a page of a GPU profile stays when the code
changes on a machine that cannot re-make it. The built page then opens with a warning that lists why it
is stale (``c2f.book.runner.is_stale``), so a reader never takes it for the record of the code beside it.
"""

from __future__ import annotations

import json
from pathlib import Path

from docutils import nodes

from c2f.book import runner


def stale_warning(stem: str, out_dir: Path | None = None) -> nodes.warning | None:
    """The warning admonition for the page `stem` in `out_dir` (the book's pages), or None when it is
    current or is not a chapter page."""
    out_dir = Path(out_dir or runner.BOOK_CHAPTERS)
    record = runner.record_path(stem, out_dir) if (out_dir / f"{stem}.ipynb").exists() else None
    if record is None or not record.exists():
        return None
    try:
        reasons = runner.is_stale(stem, None, out_dir)
    except FileNotFoundError:  # a page without a chapter source is no chapter page
        return None
    if not reasons:
        return None
    made = json.loads(record.read_text()).get("profile")
    why = (f" Its profile `{made}` needs a GPU, so it stays until it is re-made on one."
           if not runner.can_run_here(made) else " Re-make it with `python -m c2f book`.")
    warning = nodes.warning()
    warning += nodes.paragraph(text="This page is stale: it is not the record of the code and chapter beside it."
                                    + why + " Since it was made:")
    items = nodes.bullet_list()
    for reason in reasons:
        items += nodes.list_item("", nodes.paragraph(text=reason))
    warning += items
    return warning


def _insert_warning(app, doctree) -> None:
    docname = app.env.docname
    if not docname.startswith("book/chapters/"):
        return
    warning = stale_warning(Path(docname).name, Path(app.srcdir) / "book" / "chapters")
    if warning is not None:
        section = next(iter(doctree.findall(nodes.section)), doctree)
        title = 1 if section.children and isinstance(section[0], nodes.title) else 0
        section.insert(title, warning)


def _reread_chapter_pages(app, env, added, changed, removed) -> list[str]:
    """Staleness depends on files outside the page (code, chapter source): read the pages on every build."""
    return [d for d in env.found_docs if d.startswith("book/chapters/")]


def setup(app):
    app.connect("doctree-read", _insert_warning)
    app.connect("env-get-outdated", _reread_chapter_pages)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
