"""Execute chapters: jupytext (py:percent -> ipynb) -> papermill (with a parameter profile) -> record.

``run_chapter`` writes ``<out>/<stem>.ipynb`` (the executed notebook) and ``<out>/<stem>.json`` (its record,
plus ``source_sha256``, the hash of the chapter source and its resolved parameters, used to tell whether a
record is stale). A failing chapter leaves the previous page and record untouched and keeps the failed
notebook as ``<stem>.failed.ipynb`` for inspection.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import nbformat

from c2f.chapters import PROJECT_ROOT, chapter_path, chapter_paths, resolve_parameters
from c2f.compare import describe_changes
from c2f.utils import get_device, write_json

BOOK_CHAPTERS = PROJECT_ROOT / "book" / "chapters"
NBVAL_REFERENCES = PROJECT_ROOT / "tests" / "notebooks"


def machine_profile() -> str:
    """The profile a plain ``make book`` uses here: ``full`` on a GPU, else ``default``."""
    return "full" if get_device().type == "cuda" else "default"


def source_hash(chapter: str | Path, params: dict[str, Any]) -> str:
    """Changes when the chapter source or its resolved parameters change."""
    path = chapter_path(chapter)
    blob = path.read_bytes() + json.dumps(params, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


def record_path(chapter: str | Path, out_dir: Path = BOOK_CHAPTERS) -> Path:
    return Path(out_dir) / f"{chapter_path(chapter).stem}.json"


def is_stale(chapter: str | Path, profile: str, out_dir: Path = BOOK_CHAPTERS) -> bool:
    """True when the chapter has no page or record in `out_dir`, or they came from other source/params."""
    path = chapter_path(chapter)
    record = record_path(path, out_dir)
    if not record.exists() or not (Path(out_dir) / f"{path.stem}.ipynb").exists():
        return True
    params = resolve_parameters(path, profile)
    return json.loads(record.read_text()).get("source_sha256") != source_hash(path, params)


def run_chapter(chapter: str | Path, profile: str = "default", overrides: dict[str, Any] | None = None,
                out_dir: str | Path = BOOK_CHAPTERS, env: dict[str, str] | None = None) -> dict:
    """Execute one chapter with a profile and overrides; return its record."""
    import jupytext
    import papermill

    path = chapter_path(chapter)
    params = resolve_parameters(path, profile, overrides)  # fails here, before any training, on a bad key
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source, executed = tmp / f"{path.stem}.ipynb", tmp / f"{path.stem}.executed.ipynb"
        records = tmp / "records"  # the kernel writes record and figures here; moved over only on success
        jupytext.write(jupytext.read(path), source)
        saved_env = dict(os.environ)
        progress = {"TQDM_MININTERVAL": "30", "TQDM_MAXINTERVAL": "120"}  # a few lines per bar in a page
        os.environ.update({"C2F_RECORD_DIR": str(records), **progress, **(env or {})})
        try:
            papermill.execute_notebook(str(source), str(executed), parameters=params, kernel_name="python3",
                                       cwd=str(out_dir), progress_bar=False, log_output=False)
        except Exception:
            if executed.exists():
                os.replace(executed, out_dir / f"{path.stem}.failed.ipynb")
            raise
        finally:
            os.environ.clear()
            os.environ.update(saved_env)
        record_file = records / f"{path.stem}.json"
        if not record_file.exists():
            os.replace(executed, out_dir / f"{path.stem}.failed.ipynb")
            raise RuntimeError(f"{path.stem} ran but wrote no record: its last cell must call run.finish()")
        record = json.loads(record_file.read_text())
        record["source_sha256"] = source_hash(path, params)
        figures = records / f"{path.stem}_figures"
        if figures.exists():
            shutil.rmtree(out_dir / figures.name, ignore_errors=True)
            shutil.move(figures, out_dir / figures.name)
        _tag_parameter_cells(executed)
        os.replace(executed, out_dir / f"{path.stem}.ipynb")
        write_json(record_path(path, out_dir), record)
    (out_dir / f"{path.stem}.failed.ipynb").unlink(missing_ok=True)
    return record


def _tag_parameter_cells(notebook: Path) -> None:
    """In the page, fold away the declared defaults (the documented ``parameters`` cell) behind a toggle and
    keep papermill's injected cell, which shows the values this run actually used."""
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if "parameters" in tags and "hide-input" not in tags:
            tags.append("hide-input")
    nbformat.write(nb, notebook)


def build_book(profile: str | None = None, force: bool = False) -> None:
    """Execute every chapter whose page is missing or stale (with the machine's profile), then build HTML."""
    profile = profile or machine_profile()
    for path in chapter_paths():
        if force or is_stale(path, profile):
            print(f"executing {path.stem} with profile {profile!r} ...", flush=True)
            record = run_chapter(path, profile)
            print(f"  done in {record['wall_time_s']} s", flush=True)
        else:
            print(f"{path.stem}: page is up to date", flush=True)
    subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", str(PROJECT_ROOT), "--warningiserror",
                    "--nitpick", "--keep-going"], check=True, cwd=PROJECT_ROOT)
    print(f"book: {PROJECT_ROOT / '_build' / 'html' / 'index.html'}")


# the environment of the smoke references and of the nbval runs compared with them (tests/conftest.py)
REFERENCE_ENV = {"TQDM_DISABLE": "1", "C2F_THREADS": "1"}


def regenerate_references(chapters: list[str] | None = None) -> None:
    """Re-execute the smoke profile of chapters into ``tests/notebooks`` (the nbval references), with a
    fresh checkpoint cache so that every reference shows a run that trained from scratch; print which
    metrics moved against the previous reference (:func:`c2f.compare.describe_changes`)."""
    paths = [chapter_path(c) for c in chapters] if chapters else chapter_paths()
    with tempfile.TemporaryDirectory() as cache:
        for path in paths:
            print(f"smoke reference: {path.stem}", flush=True)
            previous = record_path(path, NBVAL_REFERENCES)
            previous = json.loads(previous.read_text())["metrics"] if previous.exists() else {}
            record = run_chapter(path, "smoke", out_dir=NBVAL_REFERENCES, env={"C2F_CACHE": cache, **REFERENCE_ENV})
            print(describe_changes(previous, record["metrics"], record["params"]), flush=True)
