"""The record of a chapter run: its exact fields, provenance, metric logging and where it is written."""

from __future__ import annotations

import json
import math
import platform

import pytest
import torch

import c2f
from c2f.book.chapters import declared_parameters
from c2f.book.records import Run, code_hashes, file_sha256, record_dir

FIELDS = {"chapter", "profile", "params", "seed", "git_commit", "versions", "device", "started", "wall_time_s",
          "metrics", "code_sha256"}


@pytest.fixture
def run(isolated_records, capsys) -> Run:
    """Run.start for chapter 01_vae with its declared parameters (seed changed to 3) as the namespace."""
    namespace = {**declared_parameters("01_vae"), "seed": 3, "unrelated_global": object()}
    started = Run.start("01_vae", namespace)
    assert "Record card" in capsys.readouterr().out  # shown outside a notebook as plain text
    return started


def test_record_has_exactly_the_documented_fields(run, isolated_records):
    run.log("vae_mlp", {"test_nll_nats": 91.5, "active_units": 17, "kl_per_dim": [1.0, 2.0], "flag": True})
    record = run.finish()
    path = isolated_records / "01_vae.json"
    on_disk = json.loads(path.read_text())
    assert set(on_disk) == FIELDS
    assert on_disk == json.loads(json.dumps(record))
    assert on_disk["chapter"] == "01_vae" and on_disk["profile"] == "default" and on_disk["seed"] == 3
    assert on_disk["params"] == json.loads(json.dumps({**declared_parameters("01_vae"), "seed": 3}))
    assert "unrelated_global" not in on_disk["params"]
    assert on_disk["versions"] == {"python": platform.python_version(), "torch": torch.__version__,
                                   "c2f": c2f.__version__}
    assert on_disk["device"].startswith(("cpu", "cuda"))
    assert on_disk["git_commit"] and on_disk["started"][:2] == "20"
    assert isinstance(on_disk["wall_time_s"], (int, float)) and on_disk["wall_time_s"] >= 0
    # only numbers are recorded, flat and prefixed; lists and bools are skipped
    assert on_disk["metrics"] == {"vae_mlp/active_units": 17.0, "vae_mlp/test_nll_nats": 91.5}
    assert [p.name for p in isolated_records.iterdir()] == ["01_vae.json"]  # no temporary file left
    assert on_disk["code_sha256"] == code_hashes()


def test_the_commit_is_the_one_the_run_started_from(isolated_records, monkeypatch, capsys):
    """A commit made (or a file edited) while a chapter runs must not change what its record says it ran."""
    import c2f.book.records as records
    monkeypatch.setattr(records, "git_commit", lambda: "aaaaaaa")
    started = Run.start("01_vae", declared_parameters("01_vae"))
    monkeypatch.setattr(records, "git_commit", lambda: "bbbbbbb-dirty")
    assert started.finish()["git_commit"] == "aaaaaaa"
    assert "`aaaaaaa`" in started.card()


def test_code_hashes_cover_the_imported_c2f_modules_only():
    """Every imported c2f module, by path relative to the package's parent, with its file's sha256; the
    model families are imported lazily, so `from c2f.models import VAE` adds c2f/models/vae.py only."""
    import sys
    from pathlib import Path

    from c2f.models import VAE  # noqa: F401

    hashes = code_hashes()
    root = Path(c2f.__file__).resolve().parents[1]
    imported = {name for name in sys.modules if name == "c2f" or name.startswith("c2f.")}
    assert {"c2f/__init__.py", "c2f/book/records.py", "c2f/models/__init__.py", "c2f/models/vae.py"} <= set(hashes)
    assert len(hashes) == len(imported)
    assert all(hashes[name] == file_sha256(root / name) for name in hashes)
    assert all(name.startswith("c2f/") and name.endswith(".py") for name in hashes)


def test_model_families_load_lazily():
    """A fresh interpreter that imports VAE from c2f.models loads no other model family; every name in
    c2f.models.__all__ still resolves."""
    import subprocess
    import sys

    code = ("import sys; from c2f.models import VAE; import c2f.models as m; "
            "print(sorted(n for n in sys.modules if n.startswith('c2f.models.'))); "
            "assert all(getattr(m, n) for n in m.__all__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['c2f.models.vae']"


def test_start_seeds_every_generator(run):
    """Run.start seeds torch with the chapter's seed: the next draw is that of torch.manual_seed(3)."""
    drawn = torch.rand(3)
    torch.manual_seed(3)
    assert torch.equal(drawn, torch.rand(3))


def test_start_requires_every_declared_parameter(isolated_records):
    namespace = declared_parameters("01_vae")
    del namespace["lr"]
    with pytest.raises(KeyError, match="lr"):
        Run.start("01_vae", namespace)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_log_rejects_non_finite_numbers(run, bad):
    with pytest.raises(ValueError, match="vae/nll"):
        run.log("vae", {"nll": bad})
    assert "vae/nll" not in run.metrics


def test_card_lists_parameters_and_provenance(run):
    card = run.card()
    lr = declared_parameters("01_vae")["lr"]
    assert "`default`" in card and "| seed | 3 |" in card and f"`lr={lr!r}`" in card
    assert "torch " + torch.__version__ in card


def test_record_dir_follows_the_environment(isolated_records, monkeypatch):
    assert record_dir() == isolated_records
    monkeypatch.delenv("C2F_RECORD_DIR")
    assert str(record_dir()) == "runs"


def test_savefig_writes_a_png_under_the_chapter_figures(run, isolated_records):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [0, 1])
    assert run.savefig(fig, "line") is None  # a cell ending with savefig shows only the figure
    plt.close(fig)
    path = isolated_records / "01_vae_figures" / "line.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
