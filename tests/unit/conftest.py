"""Shared fixtures of the unit tests: tiny synthetic image sets, per-test cache/record folders, data roots."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from c2f.data import ImageSet


def synthetic_images(n: int, *, seed: int = 0, shape=(1, 28, 28), prototypes: int = 4, flip: float = 0.05,
                     name: str = "synthetic", binarize: str = "static") -> ImageSet:
    """`n` binary images, each one of a few random prototypes with a fraction `flip` of its pixels flipped
    (so that a model can learn something); labels are the prototype indices."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.rand(prototypes, *shape, generator=g) < 0.3
    y = torch.randint(prototypes, (n,), generator=g)
    noise = torch.rand(n, *shape, generator=g) < flip
    x = (protos[y] ^ noise).float()
    return ImageSet(name, "train", x, y, binarize)


@pytest.fixture
def make_images():
    """The factory :func:`synthetic_images`, for tests that need their own sizes or seeds."""
    return synthetic_images


@pytest.fixture
def tiny_images() -> ImageSet:
    """64 binary 28x28 images."""
    return synthetic_images(64)


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch) -> Path:
    """A fresh, empty checkpoint cache for one test."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("C2F_CACHE", str(cache))
    return cache


@pytest.fixture
def isolated_records(tmp_path, monkeypatch) -> Path:
    """A fresh, empty record folder for one test."""
    records = tmp_path / "records"
    monkeypatch.setenv("C2F_RECORD_DIR", str(records))
    return records


@pytest.fixture(autouse=True, scope="session")
def single_thread():
    """Run the unit tests' tiny tensors on one intra-op thread: extra threads only add synchronisation
    overhead at these sizes, and on a busy 2-core runner they make every small op milliseconds slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
