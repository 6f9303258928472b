"""Parallel and cluster execution of chapters (c2f.book.executors): sharing out threads and GPUs, real
concurrency, failures reported after the others finish, and the submitit path with a tiny chapter."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from c2f.book import executors
from c2f.book.executors import ChaptersFailed, Task, execute, job_slots
from c2f.book.runner import run_task


def test_cpu_slots_share_the_cores(monkeypatch):
    monkeypatch.delenv("C2F_THREADS", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setattr(executors, "cpu_cores", lambda: 8)
    assert job_slots(2) == [{"C2F_THREADS": "4"}] * 2
    assert job_slots(3) == [{"C2F_THREADS": "2"}] * 3
    assert job_slots(16) == [{"C2F_THREADS": "1"}] * 16  # at least one thread each
    monkeypatch.setenv("C2F_THREADS", "1")  # an explicit setting wins
    assert job_slots(2) == [{"C2F_THREADS": "1"}] * 2
    with pytest.raises(ValueError, match="at least 1"):
        job_slots(0)


def test_one_gpu_per_job_when_several_are_visible(monkeypatch):
    monkeypatch.delenv("C2F_THREADS", raising=False)
    monkeypatch.setattr(executors, "cpu_cores", lambda: 16)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3,5")
    assert job_slots(2) == [{"CUDA_VISIBLE_DEVICES": "2", "C2F_THREADS": "8"},
                            {"CUDA_VISIBLE_DEVICES": "3", "C2F_THREADS": "8"}]
    assert [s["C2F_THREADS"] for s in job_slots(8)] == ["5"] * 3  # no more jobs than GPUs
    assert executors.default_jobs() == 3


def test_the_longest_chapters_start_first(tmp_path):
    for name, seconds in (("short", 10.0), ("long", 900.0)):
        (tmp_path / f"{name}.json").write_text(json.dumps({"wall_time_s": seconds}))
    tasks = [Task(f"{n}.py", "default", str(tmp_path)) for n in ("short", "new", "long")]
    assert [t.name for t in sorted(tasks, key=executors.expected_seconds, reverse=True)] == ["new", "long", "short"]


# workers run in spawned processes: module-level functions, imported there by name


def _rendezvous(task: Task) -> dict:
    """Start, then wait until every task of the test has started: passes only if they run concurrently."""
    out = Path(task.out_dir)
    (out / f"{task.name}.started").write_text(f"{os.environ['C2F_THREADS']} {os.environ.get('EXTRA')}")
    deadline = time.monotonic() + 60
    while len(list(out.glob("*.started"))) < int(task.overrides["together"]):
        if time.monotonic() > deadline:
            raise TimeoutError("the other chapters never started")
        time.sleep(0.05)
    if task.overrides.get("fail"):
        raise RuntimeError(f"{task.name} fails on purpose\nits own last line")
    return {"chapter": task.name}


def test_jobs_run_concurrently_and_a_failure_is_reported_after_the_others_finish(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("C2F_THREADS", "1")
    tasks = [Task(f"{n}.py", "smoke", str(tmp_path), {"together": 3, "fail": n == "b"}, env={"EXTRA": n})
             for n in ("a", "b", "c")]
    with pytest.raises(ChaptersFailed, match=r"1 of 3 chapters failed:\n--- b .*b.failed.ipynb\)\n") as failure:
        execute(tasks, jobs=3, worker=_rendezvous, status_every=0.5)
    assert str(failure.value).endswith("b fails on purpose\nits own last line")
    log = capsys.readouterr().out
    assert "b: FAILED" in log and "a: done" in log and "c: done" in log and "running: " in log
    assert {f.stem: f.read_text() for f in tmp_path.glob("*.started")} == {n: f"1 {n}" for n in "abc"}
    assert "EXTRA" not in os.environ


# --- the real runner on a tiny chapter that writes its own record ---------------------------------------

TINY_CHAPTER = """\
# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% tags=["parameters"]
fail = False

# %%
import json, os, pathlib
if fail:
    raise ValueError("the tiny chapter fails on purpose")
records = pathlib.Path(os.environ["C2F_RECORD_DIR"])
records.mkdir(parents=True, exist_ok=True)
(records / "{stem}.json").write_text(json.dumps({{"wall_time_s": 0.0, "metrics": {{}},
                                                 "threads": os.environ["C2F_THREADS"]}}))
"""


def _tiny_chapters(folder: Path) -> list[Path]:
    paths = []
    for stem in ("t1_ok", "t2_fails"):
        path = folder / f"{stem}.py"
        path.write_text(TINY_CHAPTER.format(stem=stem))
        path.with_suffix(".yml").write_text("schema:\n  fail: {type: bool}\n")
        paths.append(path)
    return paths


@pytest.mark.parametrize("executor", ["local", "submitit-local"])
def test_tiny_chapters_through_each_executor(executor, tmp_path):
    ok, failing = _tiny_chapters(tmp_path)
    out = tmp_path / "out"
    (tmp_path / "cluster.yml").write_text(f"folder: {tmp_path / 'jobs'}\ntimeout_min: 5\ncpus_per_task: 1\n"
                                          "slurm_partition: never-used-here\n")
    tasks = [Task(str(ok), "default", str(out)), Task(str(failing), "default", str(out), {"fail": True})]
    with pytest.raises(ChaptersFailed, match="1 of 2 chapters failed:\n--- t2_fails") as failure:
        execute(tasks, run_task, jobs=2, executor=executor, cluster_config=tmp_path / "cluster.yml")
    assert "the tiny chapter fails on purpose" in str(failure.value)
    record = json.loads((out / "t1_ok.json").read_text())
    assert record["threads"] == "1" and record["source_sha256"]
    assert (out / "t1_ok.ipynb").exists()
    assert (out / "t2_fails.failed.ipynb").exists() and not (out / "t2_fails.ipynb").exists()


def test_cli_rejects_bad_jobs_and_executors(capsys):
    from c2f.book.cli import main

    for argv in (["book", "--jobs", "0"], ["refs", "--jobs", "two"], ["book", "--executor", "mpi"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
    assert "must be a whole number" in capsys.readouterr().err


def test_cluster_jobs_with_a_gpu_use_the_gpu_profile(tmp_path):
    config = tmp_path / "cluster.yml"
    config.write_text("gpus_per_node: 1\n")
    assert executors.cluster_profile("slurm", config) == "gpu"
    config.write_text("cpus_per_task: 4\n")
    assert executors.cluster_profile("slurm", config) == "default"
    assert executors.cluster_profile("local", config) is None


def test_a_chapter_runs_once_per_call(tmp_path):
    with pytest.raises(ValueError, match="once per call"):
        execute([Task("a.py", "smoke", str(tmp_path)), Task("a.py", "smoke", str(tmp_path / "other"))], run_task)


def test_a_missing_cluster_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no cluster configuration"):
        execute([Task("x.py", "smoke", str(tmp_path))], run_task, executor="slurm",
                cluster_config=tmp_path / "none.yml")
