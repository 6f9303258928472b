"""The record of one chapter run: provenance on entry (the record card), metrics and figures on exit.

A chapter starts with ``run = c2f.Run.start("01_vae", globals())`` and ends with ``run.finish()``. The
record is a JSON file named after the chapter in ``$C2F_RECORD_DIR`` (the runner points it next to the
executed notebook; interactively it is ``./runs``), with the fields ``chapter``, ``profile``, ``params``,
``seed``, ``git_commit``, ``versions``, ``device``, ``started``, ``wall_time_s``, ``metrics`` (a flat
``name -> number`` map such as ``"vae_mlp/test_nll_nats"``) and ``code_sha256`` (the sha256 of every ``c2f``
module the kernel had imported, by path: the code the run used, which tells ``c2f.book.runner.is_stale`` when a
page no longer matches the code).
"""

from __future__ import annotations

import hashlib
import math
import numbers
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from c2f.book.chapters import chapter_path, declared_parameters
from c2f.utils import (atomic_write, configure_threads, device_description, get_device, git_commit, report,
                       seed_everything, versions, write_json)


def record_dir() -> Path:
    """Where records and figures are written: ``$C2F_RECORD_DIR`` or ``./runs``."""
    return Path(os.environ.get("C2F_RECORD_DIR") or "runs")


def _report_cells() -> None:
    """In a runner's kernel (``$C2F_PROGRESS`` set), report each cell as it starts (its number and first line),
    so that the console says which cell is running."""
    shell = sys.modules.get("IPython") and sys.modules["IPython"].get_ipython()
    if not shell or not os.environ.get("C2F_PROGRESS"):
        return

    def pre_run_cell(info) -> None:
        first = next((s for s in info.raw_cell.strip().splitlines() if not s.startswith("#")), "")
        report(f"cell {shell.execution_count}: {first[:60]}")
    shell.events.register("pre_run_cell", pre_run_cell)


class Run:
    """One execution of a chapter."""

    def __init__(self, chapter: str, params: dict[str, Any]):
        self.chapter = chapter
        self.params = params
        self.seed = int(params.get("seed", 0))
        self.profile = params.get("profile", "default")
        self.device = get_device()
        self.metrics: dict[str, float] = {}
        self.started = datetime.now(timezone.utc)
        self.git_commit = git_commit()  # read once, at the start: what the page ran, not what HEAD is at the end
        self._t0 = time.perf_counter()
        self.dir = record_dir()
        self.figure_dir = self.dir / f"{chapter}_figures"

    @classmethod
    def start(cls, chapter: str, namespace: dict[str, Any]) -> "Run":
        """Collect the chapter's declared parameters from `namespace` (the notebook's globals), apply
        ``$C2F_THREADS``, seed every generator with ``seed``, and show the record card."""
        params = {k: namespace[k] for k in declared_parameters(chapter_path(chapter))}
        configure_threads()
        run = cls(chapter, params)
        seed_everything(run.seed)
        _display_markdown(run.card())
        _report_cells()
        return run

    # --- provenance --------------------------------------------------------------------------------------
    def provenance(self) -> dict[str, Any]:
        return {
            "chapter": self.chapter, "profile": self.profile, "params": self.params, "seed": self.seed,
            "git_commit": self.git_commit, "versions": versions(), "device": device_description(self.device),
            "started": self.started.isoformat(timespec="seconds"),
        }

    def card(self) -> str:
        """The record card: a Markdown table of the run's provenance and parameters."""
        p = self.provenance()
        rows = [("profile", f"`{p['profile']}`"), ("seed", p["seed"]), ("git commit", f"`{p['git_commit']}`"),
                ("device", p["device"]),
                ("versions", ", ".join(f"{k} {v}" for k, v in p["versions"].items())),
                ("started", p["started"])]
        params = ", ".join(f"`{k}={v!r}`" for k, v in self.params.items() if k not in ("profile", "seed"))
        rows.append(("parameters", params))
        return "**Record card**\n\n| field | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)

    # --- results -----------------------------------------------------------------------------------------
    def log(self, prefix: str, metrics: dict[str, Any]) -> None:
        """Add the numeric entries of `metrics` (numbers, 0-d tensors) as ``prefix/name``; lists, tensors
        with several elements and other values are skipped."""
        for name, value in metrics.items():
            if isinstance(value, torch.Tensor) and value.numel() == 1:
                value = value.item()
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                if not math.isfinite(value):
                    raise ValueError(f"metric {prefix}/{name} is {value}; refusing to record a non-finite number")
                self.metrics[f"{prefix}/{name}"] = float(value)

    def savefig(self, fig, name: str) -> None:
        """Save a matplotlib figure as ``<record dir>/<chapter>_figures/<name>.png`` (it is still shown).

        Returns nothing, so that a cell ending with this call displays only the figure."""
        atomic_write(self.figure_dir / f"{name}.png",
                     lambda tmp: fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight"))

    def finish(self) -> dict[str, Any]:
        """Write the JSON record and show the metrics; returns the record."""
        record = {**self.provenance(), "wall_time_s": round(time.perf_counter() - self._t0, 1),
                  "metrics": dict(sorted(self.metrics.items())), "code_sha256": code_hashes()}
        path = write_json(self.dir / f"{self.chapter}.json", record)
        lines = "\n".join(f"| `{k}` | {v:.4f} |" for k, v in record["metrics"].items())
        _display_markdown(f"**Metrics** (record written to `{path.name}`; wall time {record['wall_time_s']} s)"
                          f"\n\n| metric | value |\n|---|---|\n{lines}")
        return record


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def code_hashes() -> dict[str, str]:
    """``{"c2f/models/vae.py": sha256, ...}`` for every module of the ``c2f`` package imported so far."""
    root = Path(__file__).resolve().parents[1]  # the c2f package this process runs
    hashes = {}
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if (name == "c2f" or name.startswith("c2f.")) and file and Path(file).suffix == ".py":
            path = Path(file).resolve()
            hashes[path.relative_to(root.parent).as_posix()] = file_sha256(path)
    return dict(sorted(hashes.items()))


def _display_markdown(text: str) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display

        if get_ipython() is not None:
            display(Markdown(text))
            return
    except ImportError:
        pass
    print(text)
