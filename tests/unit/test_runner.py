"""The runner end to end on a throwaway two-cell chapter: parameters reach the kernel, the record and the
executed page are written with the source hash, staleness is detected, and a failing chapter leaves the
previous page and record untouched.

Chapters are looked up under ``c2f.chapters.NOTEBOOKS``; the test points it at a temporary folder
(``chapter_path`` reads the module global at call time, so no edit of c2f is needed). The kernel is a
separate process, so the chapter itself repoints ``NOTEBOOKS`` from an environment variable that
``run_chapter(env=...)`` passes to it.
"""

from __future__ import annotations

import json
import os

import pytest
import torch

import c2f.chapters
from c2f.chapters import chapter_path, chapter_paths, resolve_parameters
from c2f.runner import is_stale, record_path, run_chapter, source_hash

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
import c2f.chapters

c2f.chapters.NOTEBOOKS = pathlib.Path(os.environ["C2F_TEST_NOTEBOOKS"])
run = c2f.Run.start("99_tiny", globals())
run.log("tiny", {"value": scale * n, "first_draw": torch.rand(1).item()})
{failure}
# %%
record = run.finish()
'''


@pytest.fixture
def chapter(tmp_path, monkeypatch):
    """A chapter 99_tiny (with a `smoke` profile) in a temporary notebooks folder that c2f looks in."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    path = notebooks / "99_tiny.py"
    path.write_text(CHAPTER.replace("{failure}", ""))
    path.with_suffix(".yml").write_text("smoke:\n  n: 1\n")
    monkeypatch.setattr(c2f.chapters, "NOTEBOOKS", notebooks)
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
                            "wall_time_s", "metrics", "source_sha256"}
    page = json.loads((out / "99_tiny.ipynb").read_text())
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in page["cells"])
    assert sorted(p.name for p in out.iterdir()) == ["99_tiny.ipynb", "99_tiny.json"]
    assert dict(os.environ) == env_before  # the runner restored the environment

    # 2. staleness: fresh for this profile, stale for another profile or after an edit of the source
    assert not is_stale("99_tiny", "smoke", out)
    assert is_stale("99_tiny", "default", out)
    good_source = chapter.read_text()
    chapter.write_text(good_source.replace("scale * n", "n * scale"))
    assert is_stale("99_tiny", "smoke", out)

    # 3. a failing chapter: the error propagates, the previous page and record stay, the failure is kept
    page_bytes, record_bytes = (out / "99_tiny.ipynb").read_bytes(), record_path("99_tiny", out).read_bytes()
    chapter.write_text(CHAPTER.replace("{failure}", 'raise RuntimeError("chapter broke")'))
    with pytest.raises(Exception, match="chapter broke"):
        run_chapter("99_tiny", "smoke", out_dir=out, env=env)
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
    with pytest.raises(c2f.chapters.ParameterError, match="bogus"):
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


def test_make_refs_prints_what_moved(chapter, tmp_path, monkeypatch, capsys):
    """`make refs` (regenerate_references) says which metrics moved against the previous reference."""
    import c2f.runner

    monkeypatch.setattr(c2f.runner, "NBVAL_REFERENCES", tmp_path / "refs")
    monkeypatch.setenv("C2F_TEST_NOTEBOOKS", str(chapter.parent))
    (tmp_path / "refs").mkdir()
    record_path("99_tiny", tmp_path / "refs").write_text(json.dumps({"metrics": {"tiny/value": 3.0}}))
    c2f.runner.regenerate_references(["99_tiny"])
    out = capsys.readouterr().out
    assert "2 metric(s) moved, 2 outside their tolerance" in out and "tiny/first_draw: new metric" in out
    assert "tiny/value: 3 -> 2: no row of c2f.compare.TOLERANCES matches" in out  # not a known kind of metric
    assert json.loads(record_path("99_tiny", tmp_path / "refs").read_text())["metrics"]["tiny/value"] == 2.0
