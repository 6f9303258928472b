"""Helpers: stable hashing, atomic writes, seeding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from c2f import utils
from c2f.utils import atomic_torch_save, atomic_write, atomic_write_text, stable_hash, write_json


def test_stable_hash_ignores_dict_key_order():
    a = {"lr": 1e-3, "model": {"hidden": [512, 256], "latent": 32}, "seed": 0}
    b = {"seed": 0, "model": {"latent": 32, "hidden": [512, 256]}, "lr": 1e-3}
    assert stable_hash(a) == stable_hash(b)
    assert len(stable_hash(a)) == 16 and len(stable_hash(a, length=8)) == 8
    assert stable_hash(a).startswith(stable_hash(a, length=8))


@pytest.mark.parametrize("other", [
    {"lr": 1e-3, "model": {"hidden": [512, 256], "latent": 32}, "seed": 1},  # a value
    {"lr": 1e-3, "model": {"hidden": [256, 512], "latent": 32}, "seed": 0},  # list order matters
    {"lr": 1e-3, "model": {"hidden": [512, 256], "latent": 32}},  # a missing key
    {"lr": "0.001", "model": {"hidden": [512, 256], "latent": 32}, "seed": 0},  # a type
])
def test_stable_hash_differs_for_different_content(other):
    base = {"lr": 1e-3, "model": {"hidden": [512, 256], "latent": 32}, "seed": 0}
    assert stable_hash(base) != stable_hash(other)


def test_stable_hash_is_fixed_across_runs():
    """sha256 of the canonical JSON '{"a": 1}': the key must not depend on the process (e.g. on hash())."""
    assert stable_hash({"a": 1}) == "f9d86028c6e0d64e"


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_atomic_write_text_writes_and_replaces(tmp_path):
    path = tmp_path / "sub" / "file.txt"
    atomic_write_text(path, "first")
    atomic_write_text(path, "second")
    assert path.read_text() == "second" and leftovers(path.parent) == []


def test_atomic_write_keeps_the_old_file_when_the_writer_raises(tmp_path):
    """A writer that fails half-way leaves the previous content intact and no temporary file behind."""
    path = tmp_path / "record.json"
    path.write_text("old content")

    def half_then_fail(tmp: Path) -> None:
        tmp.write_text("new cont")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, half_then_fail)
    assert path.read_text() == "old content"
    assert leftovers(tmp_path) == [] and [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_atomic_write_text_leaves_no_partial_file(tmp_path, monkeypatch):
    """atomic_write_text whose underlying write dies after part of the text: no file at all appears (there
    was none before), and no temporary file is left."""
    path = tmp_path / "new.txt"
    real_write_text = Path.write_text

    def partial(self, text, *args, **kwargs):
        real_write_text(self, text[:3])
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_text", partial)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(path, "a long text")
    monkeypatch.undo()
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_write_json_is_sorted_indented_and_leaves_no_temp_file(tmp_path):
    path = write_json(tmp_path / "r.json", {"b": 1, "a": [1.5, None], "p": Path("x")})
    text = path.read_text()
    assert json.loads(text) == {"a": [1.5, None], "b": 1, "p": "x"}
    assert text.index('"a"') < text.index('"b"') and text.endswith("\n") and "\n  " in text
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_atomic_torch_save_round_trip(tmp_path):
    obj = {"w": torch.arange(4.0), "epoch": 2}
    path = atomic_torch_save(obj, tmp_path / "c.pt")
    loaded = torch.load(path, weights_only=True)
    assert torch.equal(loaded["w"], obj["w"]) and loaded["epoch"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_seed_everything_repeats_draws():
    import random

    import numpy as np

    g = utils.seed_everything(11)
    draws = (random.random(), np.random.rand(), torch.rand(1).item(), torch.rand(1, generator=g).item())
    g = utils.seed_everything(11)
    assert draws == (random.random(), np.random.rand(), torch.rand(1).item(), torch.rand(1, generator=g).item())


def test_get_device(monkeypatch):
    assert utils.get_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("C2F_DEVICE", "cpu")
    assert utils.get_device() == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            utils.get_device("cuda")


def test_device_description_names_the_cpu_its_instruction_set_and_threads(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7763 64-Core Processor\n")
    assert utils.cpu_model(cpuinfo) == "AMD EPYC 7763 64-Core Processor"
    monkeypatch.setattr(utils, "cpu_model", lambda: "AMD EPYC 7763 64-Core Processor")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert utils.device_description(torch.device("cpu")) == "cpu: AMD EPYC 7763 64-Core Processor (AVX2), 1 thread"
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    assert utils.device_description(torch.device("cpu")).endswith("(AVX2), 4 threads")
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    assert utils.device_description(torch.device("cuda")) == "cuda: NVIDIA H100 80GB HBM3"


def test_device_description_of_this_machine():
    text = utils.device_description(torch.device("cpu"))
    assert text.startswith(f"cpu: {utils.cpu_model()} ({torch.backends.cpu.get_cpu_capability()}), ")
    assert utils.cpu_model() not in ("", "unknown CPU")


def test_git_commit_outside_a_repository(tmp_path):
    assert utils.git_commit(tmp_path) == "unknown"


def test_configure_threads_follows_c2f_threads(monkeypatch):
    """$C2F_THREADS sets torch's intra-op threads; unset, torch's own choice is left alone."""
    import torch

    from c2f.utils import configure_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("C2F_THREADS", "3")
        configure_threads()
        assert torch.get_num_threads() == 3
        monkeypatch.delenv("C2F_THREADS")
        torch.set_num_threads(2)
        configure_threads()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
