"""The runner end to end on a throwaway two-cell chapter: parameters reach the kernel, the record and the
executed page are written with the source hash and the code hashes, staleness is detected with its reasons,
a failing chapter leaves the previous page and record untouched and reports its own error, only committed
code writes into the book, and `build_book` never replaces a page by one of a lower profile.

Chapters are looked up under ``c2f.book.chapters.NOTEBOOKS``; the test points it at a temporary folder
(``chapter_path`` reads the module global at call time, so no edit of c2f is needed). The kernel is a
separate process, so the chapter itself repoints ``NOTEBOOKS`` from an environment variable that
``run_chapter(env=...)`` passes to it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import torch

import c2f.book.chapters
from c2f.book import runner
from c2f.book.chapters import PROJECT_ROOT, chapter_path, chapter_paths, resolve_parameters
from c2f.book.cli import main
from c2f.book.records import file_sha256
from c2f.book.runner import ChapterFailed, DirtyTreeError, is_stale, record_path, run_chapter, source_hash
from c2f.utils import git_commit

CHAPTER = '''# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% tags=["parameters"]
profile = "default"
seed = 0
scale = 2.0
n = 3

# %%
import os
import pathlib

import torch

import c2f
import c2f.book.chapters

c2f.book.chapters.NOTEBOOKS = pathlib.Path(os.environ["C2F_TEST_NOTEBOOKS"])
run = c2f.Run.start("99_tiny", globals())
run.log("tiny", {"value": scale * n, "first_draw": torch.rand(1).item()})
{failure}
# %%
record = run.finish()
'''

SCHEMA = "schema:\n  profile: {type: str}\n  seed: {type: seed}\n  scale: {type: float}\n  n: {type: int, min: 1}\n"


@pytest.fixture
def chapter(tmp_path, monkeypatch):
    """A chapter 99_tiny (with a `smoke` profile) in a temporary notebooks folder that c2f looks in."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    path = notebooks / "99_tiny.py"
    path.write_text(CHAPTER.replace("{failure}", ""))
    path.with_suffix(".yml").write_text("smoke:\n  n: 1\n" + SCHEMA)
    monkeypatch.setattr(c2f.book.chapters, "NOTEBOOKS", notebooks)
    monkeypatch.setenv("C2F_RECORD_DIR", str(tmp_path / "not-used"))
    return path


def test_the_temporary_chapter_is_found(chapter):
    assert chapter_path("99_tiny") == chapter and chapter_paths() == [chapter]
    assert resolve_parameters("99_tiny", "smoke") == {"profile": "smoke", "seed": 0, "scale": 2.0, "n": 1}


def test_run_chapter_end_to_end(chapter, tmp_path):
    """Execute, check the record and page, detect staleness, fail without touching the good page, and
    run again with an override."""
    out = tmp_path / "out"
    env_before = dict(os.environ)
    env = {"C2F_TEST_NOTEBOOKS": str(chapter.parent), "TQDM_DISABLE": "1"}

    # 1. a clean run of the smoke profile: n = 1 from the profile, scale = 2.0 by default
    record = run_chapter("99_tiny", "smoke", out_dir=out, env=env)
    params = {"profile": "smoke", "seed": 0, "scale": 2.0, "n": 1}
    assert record["params"] == params and record["profile"] == "smoke"
    assert record["metrics"]["tiny/value"] == 2.0
    torch.manual_seed(0)  # Run.start seeded the kernel with the chapter's seed
    assert record["metrics"]["tiny/first_draw"] == pytest.approx(torch.rand(1).item())
    on_disk = json.loads(record_path("99_tiny", out).read_text())
    assert on_disk == record and on_disk["source_sha256"] == source_hash(chapter, params)
    assert set(on_disk) == {"chapter", "profile", "params", "seed", "git_commit", "versions", "device", "started",
                            "wall_time_s", "metrics", "source_sha256", "code_sha256", "dirty"}
    # the kernel imported c2f, its records, chapters and utils, and no model family: it hashed exactly those
    assert set(on_disk["code_sha256"]) == {"c2f/__init__.py", "c2f/book/__init__.py", "c2f/book/records.py",
                                           "c2f/book/chapters.py", "c2f/utils.py"}
    assert on_disk["code_sha256"]["c2f/book/records.py"] == file_sha256(PROJECT_ROOT / "c2f" / "book" / "records.py")
    assert on_disk["dirty"] == [f"{chapter.parent.resolve()} is not in a git checkout"]  # outside the book: allowed
    page = json.loads((out / "99_tiny.ipynb").read_text())
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in page["cells"])
    assert sorted(p.name for p in out.iterdir()) == ["99_tiny.ipynb", "99_tiny.json"]
    assert dict(os.environ) == env_before  # the runner restored the environment

    # 2. staleness: fresh for this profile, stale for another profile or after an edit of the source
    on_disk["dirty"], on_disk["git_commit"] = [], "abc"  # (dirt is tested below; this checkout may be dirty)
    record_path("99_tiny", out).write_text(json.dumps(on_disk))
    assert is_stale("99_tiny", "smoke", out) == [] and is_stale("99_tiny", None, out) == []
    assert is_stale("99_tiny", "default", out) == ["made with profile 'smoke', not 'default'",
                                                   "parameters changed: n 1 -> 3, profile 'smoke' -> 'default'"]
    good_source = chapter.read_text()
    chapter.write_text(good_source.replace("scale * n", "n * scale"))
    assert is_stale("99_tiny", "smoke", out) == ["chapter source 99_tiny.py changed"]

    # 3. a failing chapter: the error propagates, the previous page and record stay, the failure is kept
    page_bytes, record_bytes = (out / "99_tiny.ipynb").read_bytes(), record_path("99_tiny", out).read_bytes()
    chapter.write_text(CHAPTER.replace("{failure}", 'raise RuntimeError("chapter broke")'))
    with pytest.raises(ChapterFailed, match="chapter broke") as failure:
        run_chapter("99_tiny", "smoke", out_dir=out, env=env)
    assert failure.value.ename == "RuntimeError" and failure.value.evalue == "chapter broke"
    assert failure.value.failed_notebook == out / "99_tiny.failed.ipynb"
    assert (out / "99_tiny.ipynb").read_bytes() == page_bytes
    assert record_path("99_tiny", out).read_bytes() == record_bytes
    assert (out / "99_tiny.failed.ipynb").exists()
    assert dict(os.environ) == env_before

    # 4. fixed again, with a command-line style override: the parsed value reaches the kernel and the
    #    leftover failed notebook is removed
    chapter.write_text(good_source)
    record = run_chapter("99_tiny", "smoke", {"scale": "0.5"}, out_dir=out, env=env)
    assert record["params"]["scale"] == 0.5 and record["metrics"]["tiny/value"] == 0.5
    assert not (out / "99_tiny.failed.ipynb").exists()
    assert is_stale("99_tiny", "smoke", out)  # made with an override: not the smoke profile's page


def test_run_chapter_rejects_bad_parameters_before_executing(chapter, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(c2f.book.chapters.ParameterError, match="bogus"):
        run_chapter("99_tiny", "smoke", {"bogus": 1}, out_dir=out)
    assert not out.exists()


def test_a_chapter_that_writes_no_record_is_an_error_even_with_an_old_record(chapter, tmp_path):
    """A chapter that never calls run.finish() must raise 'wrote no record', also when an older record of
    the chapter is already in the output folder; that old record must not be stamped with the new source
    hash (which would make its stale metrics look up to date to `is_stale`)."""
    out = tmp_path / "out"
    out.mkdir()
    old = {"chapter": "99_tiny", "profile": "smoke", "metrics": {"tiny/value": 123.0}, "wall_time_s": 1.0}
    record_path("99_tiny", out).write_text(json.dumps(old))
    (out / "99_tiny.ipynb").write_text("{}")
    chapter.write_text(CHAPTER.replace("{failure}", "").replace("record = run.finish()", "record = None"))
    with pytest.raises(RuntimeError, match="wrote no record"):
        run_chapter("99_tiny", "smoke", out_dir=out, env={"C2F_TEST_NOTEBOOKS": str(chapter.parent)})
    assert "source_sha256" not in json.loads(record_path("99_tiny", out).read_text())
    assert is_stale("99_tiny", "smoke", out)


def _page(out, stem="99_tiny", **fields) -> dict:
    """A page and record in `out` as run_chapter writes them, for the smoke profile of the tiny chapter."""
    params = resolve_parameters(stem, fields.get("profile", "smoke"))
    record = {"chapter": stem, "profile": params["profile"], "params": params, "git_commit": "abc",
              "source_sha256": source_hash(stem, params), "dirty": [], "wall_time_s": 1.0, "metrics": {"m": 1.0},
              "code_sha256": {"c2f/book/records.py": file_sha256(PROJECT_ROOT / "c2f/book/records.py")}, **fields}
    out.mkdir(exist_ok=True)
    (out / f"{stem}.ipynb").write_text("{}")
    record_path(stem, out).write_text(json.dumps(record))
    return record


def test_stale_reasons_name_the_code_the_parameters_and_the_dirt(chapter, tmp_path):
    out = tmp_path / "out"
    assert is_stale("99_tiny", "smoke", out) == [f"no 99_tiny.ipynb and no 99_tiny.json in {out}"]
    _page(out)
    assert is_stale("99_tiny", None, out) == []
    _page(out, code_sha256={"c2f/book/records.py": "0" * 64, "c2f/gone.py": "1" * 64})
    assert is_stale("99_tiny", None, out) == ["c2f/book/records.py changed", "c2f/gone.py vanished"]
    _page(out, **{"code_sha256": {}, "git_commit": "abc-dirty", "dirty": ["uncommitted changes in c2f/train.py"]})
    assert is_stale("99_tiny", None, out) == ["made from uncommitted code (commit abc-dirty: "
                                              "uncommitted changes in c2f/train.py)"]
    chapter.with_suffix(".yml").write_text("smoke:\n  n: 2\n" + SCHEMA)  # the profile itself changed
    assert is_stale("99_tiny", None, out)[0] == "parameters changed: n 1 -> 2"
    chapter.with_suffix(".yml").write_text("other:\n  n: 2\n" + SCHEMA)  # ... or vanished
    assert "profile 'smoke' no longer resolves" in is_stale("99_tiny", None, out)[0]


def test_a_record_without_code_hashes_is_stale(chapter, tmp_path):
    record = _page(tmp_path / "out")
    del record["code_sha256"]
    record_path("99_tiny", tmp_path / "out").write_text(json.dumps(record))
    assert is_stale("99_tiny", None, tmp_path / "out") == [
        "the record lists no c2f code (made before code hashes were recorded)"]


def _git(repo, *args):
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                   capture_output=True)


def test_only_committed_code_writes_into_the_book(chapter, tmp_path, monkeypatch):
    """`uncommitted` lists changed tracked files and an untracked chapter; run_chapter refuses to write
    into the book's folder (or the smoke references) then, before executing anything."""
    repo = chapter.parent
    assert runner.uncommitted(chapter) == [f"{repo.resolve()} is not in a git checkout"]
    _git(repo, "init", "-q")
    assert runner.uncommitted(chapter) == ["99_tiny.py is not tracked by git", "99_tiny.yml is not tracked by git"]
    _git(repo, "add", "99_tiny.py", "99_tiny.yml")
    _git(repo, "commit", "-q", "-m", "tiny")
    assert runner.uncommitted(chapter) == []
    pages = repo / "book" / "chapters"  # generated pages: rewriting one does not make the code dirty
    pages.mkdir(parents=True)
    (pages / "99_tiny.ipynb").write_text("{}")
    _git(repo, "add", "book")
    _git(repo, "commit", "-q", "-m", "page")
    (pages / "99_tiny.ipynb").write_text('{"new": 1}')
    assert runner.uncommitted(chapter) == [] and git_commit(repo).endswith("-dirty") is False
    chapter.write_text(chapter.read_text() + "\n# an edit\n")
    assert runner.uncommitted(chapter) == ["uncommitted changes in 99_tiny.py"]
    assert git_commit(repo).endswith("-dirty")

    book = tmp_path / "book"
    monkeypatch.setattr(runner, "BOOK_CHAPTERS", book)
    with pytest.raises(DirtyTreeError, match="uncommitted changes in 99_tiny.py"):
        run_chapter("99_tiny", "smoke", out_dir=book)
    assert not book.exists()
    assert main(["run", "99_tiny", "--profile", "smoke", "--out", str(book)]) == 2
    # forced: the page is written, and its record says what was uncommitted, which makes it stale
    record = run_chapter("99_tiny", "smoke", out_dir=book, allow_dirty=True,
                         env={"C2F_TEST_NOTEBOOKS": str(repo), "TQDM_DISABLE": "1"})
    assert record["dirty"] == ["uncommitted changes in 99_tiny.py"]
    assert any(r.startswith("made from uncommitted code") for r in is_stale("99_tiny", None, book))


def test_list_says_why_each_page_is_stale(capsys):
    """`python -m c2f list` prints every reason of every committed page under it."""
    assert main(["list"]) == 0
    printed = capsys.readouterr().out
    for path in chapter_paths():
        assert path.stem in printed
        if record_path(path).exists():
            for reason in is_stale(path):
                assert f"stale: {reason}" in printed


def test_cli_ends_with_the_chapters_own_error(chapter, tmp_path, monkeypatch, capsys):
    chapter.write_text(CHAPTER.replace("{failure}", 'raise FileNotFoundError("no MNIST in /nowhere: set C2F_DATA")'))
    monkeypatch.setenv("C2F_TEST_NOTEBOOKS", str(chapter.parent))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert main(["run", "99_tiny", "--profile", "smoke", "--out", str(tmp_path / "out")]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-2:]
    assert last == ["error: 99_tiny failed: FileNotFoundError: no MNIST in /nowhere: set C2F_DATA",
                    f"the full traceback is in {tmp_path / 'out' / '99_tiny.failed.ipynb'}"]


def test_book_never_replaces_a_page_by_a_lower_profile(chapter, tmp_path, monkeypatch, capsys):
    """A `full` page on a `default` machine is skipped, stale or not, unless the profile is given; a current
    page of its own profile is kept; a missing page is made with the machine's profile."""
    out = tmp_path / "out"
    runs = []
    monkeypatch.setattr(runner, "run_chapter", lambda path, profile, overrides, out_dir, env: runs.append(
        profile) or {"wall_time_s": 0})  # one stale chapter runs in this process (c2f.book.executors)
    monkeypatch.setattr(runner, "build_html", lambda: None)
    monkeypatch.setattr(runner, "machine_profile", lambda: "default")
    chapter.with_suffix(".yml").write_text("smoke:\n  n: 1\nfull:\n  n: 5\n" + SCHEMA)
    runner.build_book(out_dir=out)
    assert runs == ["default"]  # missing

    _page(out, profile="full", code_sha256={"c2f/book/records.py": "0" * 64})  # stale: code changed
    runner.build_book(out_dir=out)
    runner.build_book(out_dir=out, force=True)
    assert runs == ["default"]
    printed = capsys.readouterr().out
    assert "99_tiny: skipped: its page has profile 'full', above this machine's 'default'" in printed
    assert "c2f/book/records.py changed" in printed
    runner.build_book("default", out_dir=out)  # told to
    assert runs == ["default", "default"]

    _page(out, profile="default")  # current for its own profile: kept, also where the machine could do more
    monkeypatch.setattr(runner, "machine_profile", lambda: "full")
    runner.build_book(out_dir=out)
    assert runs == ["default", "default"]
    _page(out, profile="smoke")  # a smoke page never stays in the book
    runner.build_book(out_dir=out)
    assert runs == ["default", "default", "full"]


def test_make_refs_prints_what_moved(chapter, tmp_path, monkeypatch, capsys):
    """`make refs` (regenerate_references) says which metrics moved against the previous reference."""
    import c2f.book.runner

    monkeypatch.setattr(c2f.book.runner, "NBVAL_REFERENCES", tmp_path / "refs")
    monkeypatch.setattr(c2f.book.runner, "uncommitted", lambda path: [])  # the throwaway chapter is in no git checkout
    monkeypatch.setenv("C2F_TEST_NOTEBOOKS", str(chapter.parent))
    (tmp_path / "refs").mkdir()
    record_path("99_tiny", tmp_path / "refs").write_text(json.dumps({"metrics": {"tiny/value": 3.0}}))
    c2f.book.runner.regenerate_references(["99_tiny"], jobs=1)
    out = capsys.readouterr().out
    assert "2 metric(s) moved, 2 outside their tolerance" in out and "tiny/first_draw: new metric" in out
    assert "tiny/value: 3 -> 2: no row of c2f.book.compare.TOLERANCES matches" in out  # not a known kind of metric
    assert json.loads(record_path("99_tiny", tmp_path / "refs").read_text())["metrics"]["tiny/value"] == 2.0


def test_an_unusable_out_or_cache_folder_stops_the_run_before_it_starts(chapter, tmp_path, monkeypatch, capsys):
    """`--out` an existing file, or a cache that cannot be made: exit 2 at once, naming the folder (and
    C2F_CACHE), instead of a raw PermissionError / FileExistsError after the whole chapter ran."""
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert main(["run", "99_tiny", "--profile", "smoke", "--out", str(blocker)]) == 2
    assert f"the output folder {blocker} is not a writable folder" in capsys.readouterr().err
    monkeypatch.setenv("C2F_CACHE", str(blocker / "cache"))
    out = tmp_path / "out"
    assert main(["run", "99_tiny", "--profile", "smoke", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"the checkpoint cache {blocker / 'cache'} is not a writable folder" in err and "set C2F_CACHE" in err
    assert not (out / "99_tiny.ipynb").exists() and not (out / "99_tiny.failed.ipynb").exists()


def test_a_failed_notebook_is_kept_where_a_folder_exists(tmp_path):
    """When the output folder cannot take it (gone, or a file), the failed notebook goes to a new temporary
    folder, not lost to a second error that would hide the chapter's own."""
    notebook = tmp_path / "x.ipynb"
    notebook.write_text("{}")
    kept = runner._keep_failed(notebook, tmp_path / "gone" / "deeper", "99_tiny")
    assert kept.exists() and kept.name == "99_tiny.failed.ipynb" and not notebook.exists()
    notebook.write_text("{}")
    assert runner._keep_failed(notebook, tmp_path, "99_tiny") == tmp_path / "99_tiny.failed.ipynb"


def test_book_checks_once_up_front_with_the_exit_code_of_run(chapter, tmp_path, monkeypatch, capsys):
    """`book` from a dirty tree (here: no git checkout at all) refuses before any chapter runs, with advice
    that `book` can follow, and exits 2 like `run`; an unknown profile or `shrink` is a usage error too."""
    monkeypatch.setattr(runner, "BOOK_CHAPTERS", tmp_path / "book")
    ran = []
    monkeypatch.setattr(runner, "execute", lambda tasks, worker, **_: ran.extend(tasks))
    assert main(["book"]) == 2
    err = capsys.readouterr().err
    assert "book: refusing to make pages from uncommitted code" in err and "commit first" in err
    assert "is not in a git checkout" in err and not ran
    for profile in ("shrink", "bogus"):
        with pytest.raises(SystemExit) as exit_:
            main(["book", "--profile", profile])
        assert exit_.value.code == 2
    with pytest.raises(SystemExit) as exit_:
        main(["run", "99_tiny", "--profile", "shrink"])
    assert exit_.value.code == 2 and "invalid choice: 'shrink'" in capsys.readouterr().err


def test_ctrl_c_is_one_line(monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("c2f.book.cli.run_chapter", interrupted)
    assert main(["run", "01_vae", "--out", "/tmp/never-written"]) == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith("interrupted: run stopped") and len(err.splitlines()) == 1


def test_leftovers_of_killed_runs_are_removed_with_a_word(tmp_path, capsys):
    """A run killed by SIGKILL leaves its temporary folder (executed notebook, kernel connection file); the
    next run removes those of dead processes, says so, and leaves a live run's alone."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    left = tmp_path / f"{runner.TEMP_PREFIX}{dead.pid}-abc"
    (left / "runtime").mkdir(parents=True)
    (left / "runtime" / "kernel-1.json").write_text("{}")
    live = tmp_path / f"{runner.TEMP_PREFIX}{os.getpid()}-def"
    live.mkdir()
    assert runner.clean_leftovers(tmp_path) == [left]
    assert not left.exists() and live.exists()
    assert f"removed 1 temporary folder(s) left by killed runs: {left}" in capsys.readouterr().err


OWN_CODE_CHAPTER = '''# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% tags=["parameters"]
seed = 0

# %%
import os, pathlib
import c2f
run = c2f.Run.start("99_own", globals())
run.log("own", {"code_of_this_clone": float(pathlib.Path(c2f.__file__).resolve().is_relative_to(os.environ["CLONE"]))})
record = run.finish()
'''


def test_a_second_checkout_sharing_the_venv_runs_its_own_c2f(tmp_path):
    """The kernel puts the checkout's root first on its import path: a copy of the package run from another
    folder (no PYTHONPATH, the venv's editable install pointing elsewhere) imports the copy, not the install."""
    import shutil

    clone = tmp_path / "clone"
    shutil.copytree(PROJECT_ROOT / "c2f", clone / "c2f", ignore=shutil.ignore_patterns("__pycache__"))
    (clone / "notebooks").mkdir()
    (clone / "notebooks" / "99_own.py").write_text(OWN_CODE_CHAPTER)
    (clone / "notebooks" / "99_own.yml").write_text("schema:\n  seed: {type: seed}\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(CLONE=str(clone.resolve()), TQDM_DISABLE="1")
    proc = subprocess.run([sys.executable, "-m", "c2f", "run", "99_own", "--out", str(tmp_path / "out")],
                          cwd=clone, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((tmp_path / "out" / "99_own.json").read_text())
    assert record["metrics"]["own/code_of_this_clone"] == 1.0


def test_the_console_shows_the_kernels_progress_and_no_transport_warning(chapter, tmp_path, capfd):
    """What the chapter reports (c2f.utils.report: training progress, cache fallbacks) and each cell as it
    starts appear on the console, prefixed with the chapter, while it runs; the kernel runs over IPC, so no
    TCP warning."""
    chapter.write_text(CHAPTER.replace("{failure}", "import c2f.utils\nc2f.utils.report('tiny: epoch 1/1, loss 1.00')"))
    capfd.readouterr()
    run_chapter("99_tiny", "smoke", out_dir=tmp_path / "out", env={"C2F_TEST_NOTEBOOKS": str(chapter.parent)})
    err = capfd.readouterr().err
    assert "[99_tiny] tiny: epoch 1/1, loss 1.00" in err
    assert re.search(r"\[99_tiny\] cell \d+: record = run.finish\(\)", err), err
    assert "without encryption" not in err
    page = json.loads((tmp_path / "out" / "99_tiny.ipynb").read_text())
    assert "epoch 1/1" not in json.dumps([c.get("outputs", []) for c in page["cells"]])
