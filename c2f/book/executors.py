"""Execute several chapters at once: local processes sharing the CPU threads or the GPUs, or cluster jobs.

A :class:`Task` is one chapter run (a profile, overrides, an output folder and extra environment).
:func:`execute` runs a list of them with a `worker`, the function that runs one task in one process and returns
its record (the runner passes its ``run_task``; this module never imports the runner), and returns their
records:

- ``executor="local"``: ``jobs`` chapters at a time, each in its own process (one at a time: in this one),
  the longest first. Each job gets ``cores // jobs`` CPU threads (``C2F_THREADS``, unless the environment
  or the task sets it) and, with several GPUs visible, one GPU (``CUDA_VISIBLE_DEVICES``).
- ``executor="slurm"`` (or ``"submitit-local"`` to try the same path on this machine): one job per chapter,
  submitted through submitit with the parameters of a cluster file (``cluster.yml``).

Progress is one line per chapter start and finish (with its wall time) and a status line every
``status_every`` seconds. A failing chapter does not stop the others: :class:`ChaptersFailed` is raised
when all have finished, and the failed notebook stays as ``<stem>.failed.ipynb`` beside the page.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import re
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import yaml

EXECUTORS = ("local", "slurm", "submitit-local")
CLUSTER_CONFIG = Path(__file__).resolve().parents[2] / "cluster.yml"


@dataclass(frozen=True)
class Task:
    """One chapter run: what the runner's ``run_chapter`` needs, plus environment for its kernel."""

    chapter: str
    profile: str
    out_dir: str
    overrides: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return Path(self.chapter).stem


class ChaptersFailed(RuntimeError):
    """One or more chapters failed (the others finished); the message names each with its error."""


def _run_isolated(worker: Callable[[Task], dict], task: Task) -> tuple[bool, Any]:
    """Run `worker(task)` with the task's environment; return (True, record) or (False, error text).

    The error comes back as text: exceptions with custom constructors (papermill's) do not unpickle."""
    saved = dict(os.environ)
    os.environ.update(task.env)  # CUDA_VISIBLE_DEVICES must be set before anything touches CUDA
    try:
        return True, worker(task)
    except Exception as err:  # reported with the others at the end
        return False, _last_lines(f"{type(err).__name__}: {err}")
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _last_lines(text: str, n: int = 8) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # the colours of a notebook's traceback
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(lines[-n:])


# --- sharing this machine ----------------------------------------------------------------------------------


def cpu_cores() -> int:
    """CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def visible_gpus() -> list[str]:
    """The CUDA devices this process sees, as ``CUDA_VISIBLE_DEVICES`` entries."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d.strip() for d in listed.split(",") if d.strip() and d.strip() != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def default_jobs() -> int:
    """Chapters at a time when ``--jobs`` is not given: one per GPU when several are visible, else one per
    CPU core (on 2 cores, 2 chapters × 1 thread beat 1 chapter × 2 threads; README, "Re-running")."""
    gpus = visible_gpus()
    return len(gpus) if len(gpus) > 1 else cpu_cores()


def job_slots(jobs: int) -> list[dict[str, str]]:
    """The environment of each of `jobs` concurrent chapters: a share of the CPU threads and, when several
    GPUs are visible, one GPU each (jobs beyond the GPU count are dropped)."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    gpus = visible_gpus()
    if len(gpus) > 1:
        jobs = min(jobs, len(gpus))
    threads = os.environ.get("C2F_THREADS") or str(max(1, cpu_cores() // jobs))
    if len(gpus) > 1:
        return [{"CUDA_VISIBLE_DEVICES": g, "C2F_THREADS": threads} for g in gpus[:jobs]]
    return [{"C2F_THREADS": threads} for _ in range(jobs)]


# --- executors -----------------------------------------------------------------------------------------------


def execute(tasks: list[Task], worker: Callable[[Task], dict], *, jobs: int | None = None, executor: str = "local",
            cluster_config: str | Path | None = None, status_every: float = 60.0) -> dict[str, dict]:
    """Run every task with `executor`, each as `worker(task)` (a module-level function: spawned processes and
    cluster jobs import it by name); return ``{chapter stem: record}``, or raise :class:`ChaptersFailed` after
    all have finished when any failed."""
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; choose one of {EXECUTORS}")
    if not tasks:
        return {}
    names = [t.name for t in tasks]
    if len(set(names)) < len(names):
        raise ValueError(f"each chapter may run once per call; got {sorted(names)}")
    if executor == "local":
        outcomes = run_local(tasks, jobs or default_jobs(), worker, status_every=status_every)
    else:
        config = load_cluster_config(cluster_config)
        cluster = "slurm" if executor == "slurm" else "local"
        outcomes = run_submitit(tasks, config, worker, cluster=cluster, status_every=status_every)
    failed = {name: error for name, (ok, error) in outcomes.items() if not ok}
    if failed:
        out = {t.name: Path(t.out_dir) for t in tasks}
        raise ChaptersFailed(f"{len(failed)} of {len(tasks)} chapters failed:\n" + "\n".join(
            f"--- {name} (failed notebook, if it ran: {out[name] / (name + '.failed.ipynb')})\n{error}"
            for name, error in failed.items()))
    return {name: record for name, (ok, record) in outcomes.items()}


def run_local(tasks: list[Task], jobs: int, worker: Callable[[Task], dict], *,
              status_every: float = 60.0) -> dict[str, tuple[bool, Any]]:
    """Run the tasks in child processes, at most `jobs` at a time (fewer when there are fewer GPUs), the
    longest first (by the wall time of their last record; unknown ones first): the book ends soonest so.
    One at a time, they run in this process."""
    slots = job_slots(min(jobs, len(tasks)))
    pending, running, outcomes = sorted(tasks, key=expected_seconds, reverse=True), {}, {}
    free = list(range(len(slots)))
    log = _Progress(len(tasks))
    log(f"{len(tasks)} chapters, {len(slots)} at a time")
    if len(slots) == 1:  # one at a time: in this process, one after the other
        for task in pending:
            task, t0 = replace(task, env={**slots[0], **task.env}), time.monotonic()
            log.start(task)
            outcomes[task.name] = _run_isolated(worker, task)
            log.finish(task.name, outcomes[task.name][0], time.monotonic() - t0)
        return outcomes
    with ProcessPoolExecutor(len(slots), mp_context=multiprocessing.get_context("spawn")) as pool:
        while pending or running:
            while pending and free:
                task, slot = pending.pop(0), free.pop(0)
                task = replace(task, env={**slots[slot], **task.env})
                running[pool.submit(_run_isolated, worker, task)] = (task, slot, time.monotonic())
                log.start(task)
            done, _ = wait(running, timeout=status_every, return_when=FIRST_COMPLETED)
            if not done:
                log.status({t.name: t0 for t, _, t0 in running.values()}, [t.name for t in pending])
            for future in done:
                task, slot, t0 = running.pop(future)
                free.append(slot)
                try:
                    outcomes[task.name] = future.result()
                except Exception as err:  # the child process itself died (killed, out of memory)
                    outcomes[task.name] = (False, f"{type(err).__name__}: {err}")
                log.finish(task.name, outcomes[task.name][0], time.monotonic() - t0)
    return outcomes


def expected_seconds(task: Task) -> float:
    """The wall time of the task's last record in its output folder (infinite when there is none)."""
    record = Path(task.out_dir) / f"{task.name}.json"
    try:
        return float(json.loads(record.read_text())["wall_time_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return math.inf


def cluster_profile(executor: str = "local", cluster_config: str | Path | None = None, **_) -> str | None:
    """``gpu`` when the chapters go to cluster jobs that get a GPU (this machine's profile says nothing about
    the nodes'), else None."""
    if executor == "local":
        return None
    return "gpu" if int(load_cluster_config(cluster_config).get("gpus_per_node", 0)) > 0 else "default"


def load_cluster_config(path: str | Path | None = None) -> dict[str, Any]:
    """The submitit parameters of a cluster file (``cluster.yml`` by default), checked for a mapping."""
    path = Path(path) if path else CLUSTER_CONFIG
    if not path.exists():
        raise FileNotFoundError(f"no cluster configuration {path}; copy cluster.yml from the repository and edit it")
    config = yaml.safe_load(path.read_text()) or {}
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a mapping of submitit parameters, got {type(config).__name__}")
    return config


def run_submitit(tasks: list[Task], config: dict[str, Any], worker: Callable[[Task], dict], *,
                 cluster: str = "slurm", status_every: float = 60.0) -> dict[str, tuple[bool, Any]]:
    """Submit one job per task through submitit's ``AutoExecutor`` (`cluster` = ``slurm``, or ``local`` /
    ``debug`` for a trial on this machine) and wait for all. `config` holds submitit's parameters
    (``timeout_min``, ``cpus_per_task``, ``gpus_per_node``, ``mem_gb``, ``slurm_partition``, ...) and
    ``folder``, where job scripts and logs go (on a filesystem the nodes share, as the output folder)."""
    import submitit

    config = dict(config)
    folder = Path(config.pop("folder", "_build/submitit"))
    executor = submitit.AutoExecutor(folder=folder / "%j", cluster=cluster)
    executor.update_parameters(**config)
    threads = str(config.get("cpus_per_task", 1))
    log = _Progress(len(tasks))
    jobs = {}
    for task in tasks:
        executor.update_parameters(name=f"c2f-{task.name}")
        task = replace(task, env={"C2F_THREADS": threads, **task.env})
        jobs[task.name] = (executor.submit(_run_isolated, worker, task), time.monotonic())
        log(f"{task.name}: submitted as job {jobs[task.name][0].job_id} ({cluster})")
    outcomes = {}
    while len(outcomes) < len(jobs):
        waiting = {}
        for name, (job, t0) in jobs.items():
            if name in outcomes:
                continue
            if not job.done():
                waiting[name] = t0
                continue
            try:
                outcomes[name] = job.result()
            except Exception as err:  # the job failed outside the chapter: timeout, preemption, node failure
                outcomes[name] = (False, _last_lines(f"{type(err).__name__}: {err}") +
                                  f"\n(job logs: {job.paths.stdout}, {job.paths.stderr})")
            log.finish(name, outcomes[name][0], time.monotonic() - t0)
        if waiting:
            deadline = time.monotonic() + status_every
            while time.monotonic() < deadline and not any(jobs[n][0].done() for n in waiting):
                time.sleep(min(1.0, status_every))
            if not any(jobs[n][0].done() for n in waiting):
                log.status(waiting, [], states={n: jobs[n][0].state for n in waiting})
    return outcomes


class _Progress:
    """One line per event, prefixed with the time since the start: what a shared terminal can show."""

    def __init__(self, total: int):
        self.t0, self.total, self.finished = time.monotonic(), total, 0

    def __call__(self, message: str) -> None:
        print(f"[{_clock(time.monotonic() - self.t0)}] {message}", flush=True)

    def start(self, task: Task) -> None:
        resources = ", ".join(f"{k}={task.env[k]}" for k in ("C2F_THREADS", "CUDA_VISIBLE_DEVICES") if k in task.env)
        self(f"{task.name}: started, profile {task.profile!r}" + (f" ({resources})" if resources else ""))

    def finish(self, name: str, ok: bool, seconds: float) -> None:
        self.finished += 1
        self(f"{name}: {'done' if ok else 'FAILED'} in {_clock(seconds)} ({self.finished}/{self.total})")

    def status(self, running: dict[str, float], queued: list[str], states: dict[str, str] | None = None) -> None:
        now = time.monotonic()
        parts = [f"{n} {_clock(now - t0)}" + (f" {states[n]}" if states else "") for n, t0 in running.items()]
        self(f"running: {', '.join(parts)}" + (f"; queued: {', '.join(queued)}" if queued else ""))


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}"
