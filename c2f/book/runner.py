"""Execute chapters: jupytext (py:percent -> ipynb) -> papermill (with a parameter profile) -> record.

``run_chapter`` writes ``<out>/<stem>.ipynb`` (the executed notebook) and ``<out>/<stem>.json`` (its record,
plus ``source_sha256``, the hash of the chapter source and its resolved parameters, and ``dirty``, what was
uncommitted when it ran). ``is_stale`` says why a page no longer matches its source, its parameters or the
``c2f`` code it ran. Pages of the book and the smoke references come from committed code only. A failing
chapter leaves the previous page and record untouched and keeps the failed notebook as
``<stem>.failed.ipynb`` for inspection.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import multiprocessing
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import nbformat
from traitlets.config import Config

from c2f.book.chapters import PROJECT_ROOT, ParameterError, chapter_path, chapter_paths, resolve_parameters
from c2f.book.compare import describe_changes
from c2f.book.executors import Task, cluster_profile, execute
from c2f.book.records import file_sha256
from c2f.utils import get_device, uncommitted_changes, write_json

BOOK_CHAPTERS = PROJECT_ROOT / "book" / "chapters"
NBVAL_REFERENCES = PROJECT_ROOT / "tests" / "notebooks"
PROFILE_ORDER = ("smoke", "default", "gpu", "full")  # `make book` never replaces a page by a lower one
GPU_PROFILES = ("gpu", "full")


class DirtyTreeError(RuntimeError):
    """A book page or smoke reference asked for from uncommitted code."""


class FolderError(RuntimeError):
    """An output or cache folder that cannot be created or written to (a usage error: nothing ran)."""


class ChapterFailed(RuntimeError):
    """A chapter raised: its own error (``ename``, ``evalue``) and the executed notebook that keeps the trace."""

    def __init__(self, chapter: str, ename: str, evalue: str, failed_notebook: Path | None):
        self.ename, self.evalue, self.failed_notebook = ename, evalue, failed_notebook
        kept = f"\nthe full traceback is in {failed_notebook}" if failed_notebook else ""
        super().__init__(f"{chapter} failed: {ename}: {evalue}{kept}")


def writable_folder(folder: str | Path, what: str, hint: str = "") -> Path:
    """`folder`, created if missing, after writing and removing a file in it; :class:`FolderError` naming
    it (and `hint`) when that fails: checked before anything trains, so that no work is lost on it."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".c2f-write-test-"):
            pass
    except OSError as err:
        raise FolderError(f"{what} {folder} is not a writable folder ({type(err).__name__}: {err.strerror or err})"
                          + (f"; {hint}" if hint else "")) from None
    return folder


def check_folders(out_dir: str | Path, env: dict[str, str] | None = None) -> None:
    """The output folder and the checkpoint cache (``$C2F_CACHE``, or the one `env` sets) are writable."""
    from c2f.train import cache_dir

    writable_folder(out_dir, "the output folder", "choose another with --out DIR")
    cache = Path(env["C2F_CACHE"]) if env and env.get("C2F_CACHE") else cache_dir()
    writable_folder(cache, "the checkpoint cache", "set C2F_CACHE to a writable folder")


TEMP_PREFIX = "c2f-run-"  # the temporary folder of a run: c2f-run-<pid>-<random> under the system's


def clean_leftovers(root: str | Path | None = None) -> list[Path]:
    """Remove the temporary folders (executed notebook, kernel connection file) that killed runs left
    behind, those whose process is gone, saying so; return them."""
    removed = []
    for folder in Path(root or tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*-*"):
        pid = folder.name[len(TEMP_PREFIX):].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    if removed:
        print(f"removed {len(removed)} temporary folder(s) left by killed runs: {', '.join(map(str, removed))}",
              file=sys.stderr, flush=True)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _keep_failed(notebook: Path, out_dir: Path, stem: str) -> Path:
    """Move a failed run's notebook to ``<out_dir>/<stem>.failed.ipynb``, or, when that folder cannot take it,
    to a new folder under the system's temporary folder: the trace is never lost to a second error."""
    target = out_dir / f"{stem}.failed.ipynb"
    try:
        os.replace(notebook, target)
    except OSError:
        target = Path(tempfile.mkdtemp(prefix=f"c2f-{stem}-")) / target.name
        shutil.move(notebook, target)
    return target


def machine_profile() -> str:
    """The profile a plain ``make book`` uses here: ``gpu`` on a GPU, else ``default`` (``full``, paper
    scale, is always an explicit choice)."""
    return "gpu" if get_device().type == "cuda" else "default"


def source_hash(chapter: str | Path, params: dict[str, Any]) -> str:
    """Changes when the chapter source or its resolved parameters change."""
    path = chapter_path(chapter)
    blob = path.read_bytes() + json.dumps(params, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


def record_path(chapter: str | Path, out_dir: Path = BOOK_CHAPTERS) -> Path:
    return Path(out_dir) / f"{chapter_path(chapter).stem}.json"


def can_run_here(profile: str) -> bool:
    """False for a GPU profile on a machine without CUDA."""
    return profile not in GPU_PROFILES or get_device().type == "cuda"


def is_stale(chapter: str | Path, profile: str | None = None, out_dir: Path = BOOK_CHAPTERS) -> list[str]:
    """Why the page of `chapter` in `out_dir` is stale; an empty list when it is current.

    A page is current when it was made from committed code and its record matches the chapter source, the
    parameters of `profile` (by default the page's own profile) and every ``c2f`` file the run imported."""
    path = chapter_path(chapter)
    page, record_file = Path(out_dir) / f"{path.stem}.ipynb", record_path(path, out_dir)
    missing = [f.name for f in (page, record_file) if not f.exists()]
    if missing:
        return [f"no {' and no '.join(missing)} in {out_dir}"]
    record = json.loads(record_file.read_text())
    made = record.get("profile")
    profile = profile or made
    reasons = [] if profile == made else [f"made with profile {made!r}, not {profile!r}"]
    try:
        params = json.loads(json.dumps(resolve_parameters(path, profile)))
    except ParameterError as err:
        return reasons + [f"profile {profile!r} no longer resolves: {err}"]
    if record.get("source_sha256") != source_hash(path, params):
        recorded = record.get("params") or {}
        if recorded != params:
            reasons.append("parameters changed: " + ", ".join(
                f"{k} {recorded.get(k, '(none)')!r} -> {params.get(k, '(none)')!r}"
                for k in sorted(set(recorded) | set(params)) if recorded.get(k) != params.get(k)))
        if record.get("source_sha256") != source_hash(path, recorded):
            reasons.append(f"chapter source {path.name} changed")
    if record.get("dirty") or str(record.get("git_commit", "")).endswith("-dirty"):
        reasons.append(f"made from uncommitted code (commit {record.get('git_commit')}: "
                       f"{'; '.join(record.get('dirty') or ['tracked files changed'])})")
    return reasons + code_changes(record)


def code_changes(record: dict) -> list[str]:
    """The ``c2f`` files that changed or vanished since the run that made `record` imported them."""
    hashes = record.get("code_sha256")
    if hashes is None:
        return ["the record lists no c2f code (made before code hashes were recorded)"]
    changes = []
    for name, sha in hashes.items():
        file = PROJECT_ROOT / name
        if not file.exists():
            changes.append(f"{name} vanished")
        elif file_sha256(file) != sha:
            changes.append(f"{name} changed")
    return changes


def uncommitted(chapter: str | Path) -> list[str]:
    """What keeps the chapter from being committed code: uncommitted changes to tracked files in its git
    checkout (other than the generated pages, ``utils.GENERATED``), or its source (or profiles) not tracked.
    An empty list when everything is committed."""
    path = chapter_path(chapter).resolve()

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(path.parent), *args], capture_output=True, text=True)

    changed = uncommitted_changes(path.parent)
    if changed is None:
        return [f"{path.parent} is not in a git checkout"]
    problems = [f"uncommitted changes in {name}" for name in changed]
    for file in (path, path.with_suffix(".yml")):
        if file.exists() and git("ls-files", "--error-unmatch", file.name).returncode:
            problems.append(f"{file.name} is not tracked by git")
    return problems


def _protected(out_dir: Path) -> bool:
    """The book's pages and the smoke references: only committed code may write there."""
    return Path(out_dir).resolve() in (BOOK_CHAPTERS.resolve(), NBVAL_REFERENCES.resolve())


def run_chapter(chapter: str | Path, profile: str = "default", overrides: dict[str, Any] | None = None,
                out_dir: str | Path = BOOK_CHAPTERS, env: dict[str, str] | None = None,
                allow_dirty: bool = False) -> dict:
    """Execute one chapter with a profile and overrides; return its record.

    Into the book or the smoke references only from committed code, unless `allow_dirty`; the record's
    ``dirty`` lists what was uncommitted. A chapter that raises gives :class:`ChapterFailed`."""
    import jupytext
    import papermill

    path = chapter_path(chapter)
    params = resolve_parameters(path, profile, overrides)  # fails here, before any training, on a bad value
    dirty = uncommitted(path)
    if dirty and _protected(out_dir) and not allow_dirty:
        raise DirtyTreeError(
            f"{path.stem}: refusing to write into {out_dir} from uncommitted code (its pages must be "
            f"reproducible from a commit); commit first, or run with --out DIR (and --allow-dirty to force):\n  "
            + "\n  ".join(dirty))
    out_dir = Path(out_dir)
    check_folders(out_dir, env)
    clean_leftovers()
    with tempfile.TemporaryDirectory(prefix=f"{TEMP_PREFIX}{os.getpid()}-") as tmp:
        tmp = Path(tmp)
        source, executed = tmp / f"{path.stem}.ipynb", tmp / f"{path.stem}.executed.ipynb"
        records = tmp / "records"  # the kernel writes record and figures here; moved over only on success
        jupytext.write(jupytext.read(path), source)
        saved_env = dict(os.environ)
        # the kernel imports this checkout's c2f (not whatever the venv's editable install points to), and
        # its connection file lives in the run's temporary folder, removed with it
        kernel = {"PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
                  "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "C2F_PROGRESS": str(tmp / "progress.log")}
        os.environ.update({"C2F_RECORD_DIR": str(records), **kernel, **(env or {})})
        try:
            # IPC sockets in the run's temporary folder: no TCP port, no warning about one, nothing left behind
            with _Console(path.stem, tmp / "progress.log"):
                papermill.execute_notebook(str(source), str(executed), parameters=params, kernel_name="python3",
                                           cwd=str(out_dir), progress_bar=False, log_output=False,
                                           config=Config({"KernelManager": {"transport": "ipc", "ip": str(tmp / "kernel")}}))
        except Exception as err:
            failed = _keep_failed(executed, out_dir, path.stem) if executed.exists() else None
            if isinstance(err, papermill.PapermillExecutionError):
                raise ChapterFailed(path.stem, err.ename, err.evalue, failed) from err
            raise
        finally:
            os.environ.clear()
            os.environ.update(saved_env)
        record_file = records / f"{path.stem}.json"
        if not record_file.exists():
            failed = _keep_failed(executed, out_dir, path.stem)
            raise RuntimeError(f"{path.stem} ran but wrote no record: its last cell must call run.finish() "
                               f"(the executed notebook: {failed})")
        record = json.loads(record_file.read_text())
        record["source_sha256"] = source_hash(path, params)
        record["dirty"] = dirty
        figures = records / f"{path.stem}_figures"
        if figures.exists():
            shutil.rmtree(out_dir / figures.name, ignore_errors=True)
            shutil.move(figures, out_dir / figures.name)
        _tag_parameter_cells(executed)
        os.replace(executed, out_dir / f"{path.stem}.ipynb")
        write_json(record_path(path, out_dir), record)
    (out_dir / f"{path.stem}.failed.ipynb").unlink(missing_ok=True)
    return record


def run_task(task: Task) -> dict:
    """Execute one :class:`~c2f.book.executors.Task` in this process and return its record: the worker this
    module hands to :func:`c2f.book.executors.execute` (module-level, so that spawned processes and cluster
    jobs find it by name)."""
    return run_chapter(task.chapter, task.profile, task.overrides, out_dir=task.out_dir, env=task.env)


class _Console:
    """Shows the lines the kernel appends to its progress file (``$C2F_PROGRESS``: training progress, cache
    fallbacks) on the console as they come: one updating line on a terminal, plain lines in a log."""

    def __init__(self, stem: str, file: Path):
        self.stem, self.file, self.done = stem, file, threading.Event()
        self.updating = sys.stderr.isatty() and multiprocessing.parent_process() is None
        self.thread = threading.Thread(target=self._follow, daemon=True)

    def __enter__(self):
        self.file.touch()
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()
        if self.updating:
            print(file=sys.stderr, flush=True)

    def _follow(self) -> None:
        with open(self.file) as f:
            while True:
                line = f.readline()
                if line:
                    text = f"[{self.stem}] {line.rstrip()}"
                    print(f"\r\x1b[K{text}" if self.updating else text, end="" if self.updating else "\n",
                          file=sys.stderr, flush=True)
                elif self.done.is_set():
                    return
                else:
                    self.done.wait(0.5)


def _tag_parameter_cells(notebook: Path) -> None:
    """In the page, fold away the declared defaults (the documented ``parameters`` cell) behind a toggle and
    keep papermill's injected cell, which shows the values this run actually used."""
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if "parameters" in tags and "hide-input" not in tags:
            tags.append("hide-input")
    nbformat.write(nb, notebook)


def _rank(profile: str | None) -> int:
    return PROFILE_ORDER.index(profile) if profile in PROFILE_ORDER else -1


def recorded_profile(chapter: str | Path, out_dir: Path = BOOK_CHAPTERS) -> str | None:
    record = record_path(chapter, out_dir)
    return json.loads(record.read_text()).get("profile") if record.exists() else None


def build_book(profile: str | None = None, force: bool = False, out_dir: Path | None = None, **execution) -> None:
    """Execute every chapter whose page is missing or stale, then build the HTML.

    Without an explicit `profile` a chapter runs with the machine's profile (cluster jobs: theirs), a page is
    current when it matches its own profile, and a page of a higher profile (``PROFILE_ORDER``) is never
    replaced: it is skipped, saying why. With `profile`, every page not made with it is re-executed.
    `execution` goes to :func:`c2f.book.executors.execute` (``jobs``, ``executor``, ``cluster_config``)."""
    explicit, profile = profile is not None, profile or cluster_profile(**execution) or machine_profile()
    out_dir = Path(out_dir or BOOK_CHAPTERS)
    check_book(profile, out_dir)
    tasks = []
    for path in chapter_paths():
        made = recorded_profile(path, out_dir)
        if not explicit and _rank(made) > _rank(profile):
            reasons = is_stale(path, None, out_dir)
            state = f"stale ({'; '.join(reasons)})" if reasons else "up to date"
            print(f"{path.stem}: skipped: its page has profile {made!r}, above this machine's {profile!r}, and is "
                  f"{state}; `--profile {profile}` would replace it", flush=True)
            continue
        own = None if _rank(made) >= _rank("default") else profile  # a smoke page is never a book page
        reasons = ["--force"] if force else is_stale(path, profile if explicit else own, out_dir)
        if reasons:
            print(f"{path.stem}: to execute with profile {profile!r} ({'; '.join(reasons)})", flush=True)
            tasks.append(Task(str(path), profile, str(out_dir)))
        else:
            print(f"{path.stem}: page is up to date", flush=True)
    execute(tasks, run_task, **execution)
    build_html()


def check_book(profile: str, out_dir: Path) -> None:
    """What `book` checks once, before any chapter runs: the profile exists for every chapter and resolves,
    the tree is committed (the book's pages come from committed code only), the folders are writable."""
    for path in chapter_paths():
        resolve_parameters(path, profile)
    dirty = sorted({problem for path in chapter_paths() for problem in uncommitted(path)})
    if dirty and _protected(out_dir):
        raise DirtyTreeError("book: refusing to make pages from uncommitted code (every page must be "
                             "reproducible from a commit); commit first (`python -m c2f run NN --out DIR "
                             "--allow-dirty` tries uncommitted code outside the book):\n  " + "\n  ".join(dirty))
    check_folders(out_dir)


def build_html() -> None:
    subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", str(PROJECT_ROOT), "--warningiserror",
                    "--nitpick", "--keep-going"], check=True, cwd=PROJECT_ROOT)
    print(f"book: {PROJECT_ROOT / '_build' / 'html' / 'index.html'}")


# the environment of the smoke references and of the nbval runs compared with them (tests/conftest.py)
REFERENCE_ENV = {"TQDM_DISABLE": "1", "C2F_THREADS": "1"}


def regenerate_references(chapters: list[str] | None = None, **execution) -> None:
    """Re-execute the smoke profile of chapters into ``tests/notebooks`` (the nbval references), with a
    fresh checkpoint cache so that every reference shows a run that trained from scratch, and print which
    metrics moved against the previous reference (:func:`c2f.book.compare.describe_changes`). `execution` goes
    to :func:`c2f.book.executors.execute`; every reference runs with one thread (:data:`REFERENCE_ENV`)."""
    paths = [chapter_path(c) for c in chapters] if chapters else chapter_paths()
    previous = {p.stem: json.loads(record_path(p, NBVAL_REFERENCES).read_text())["metrics"]
                for p in paths if record_path(p, NBVAL_REFERENCES).exists()}
    with tempfile.TemporaryDirectory() as cache:
        records = execute([Task(str(p), "smoke", str(NBVAL_REFERENCES), env={"C2F_CACHE": cache, **REFERENCE_ENV})
                           for p in paths], run_task, **execution)
    for stem, record in records.items():
        moved = describe_changes(previous.get(stem, {}), record["metrics"], record["params"])
        print(f"smoke reference {stem}:\n{moved}", flush=True)
