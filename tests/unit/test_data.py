"""Datasets: sizes and values of every split, the seeded batch iterator, binarization, class selection, and
a clear error (never a network access) when data is missing."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from c2f import data
from c2f.data import DataNotFoundError, ImageSet, batches


def require(folder: str) -> None:
    """Skip, saying why, only when no data root was configured and the default one lacks `folder`; with
    C2F_DATA set (as in CI) missing data is a failure."""
    if not os.environ.get("C2F_DATA") and not (data.data_root() / folder).exists():
        pytest.skip(f"C2F_DATA is unset and {data.data_root() / folder} does not exist")


def is_binary(x: torch.Tensor) -> bool:
    """Only 0s and 1s, and both of them."""
    return bool(((x == 0) | (x == 1)).all() and (x == 0).any() and (x == 1).any())


@pytest.fixture(scope="module")
def mnist() -> dict[str, ImageSet]:
    require("MNIST")
    return {split: data.load("mnist", split) for split in data.SPLITS}


@pytest.fixture(scope="module")
def omniglot() -> dict[str, ImageSet]:
    require("omniglot-npz")
    return {split: data.load("omniglot", split) for split in data.SPLITS}


# --- the real datasets -----------------------------------------------------------------------------------


def test_mnist_splits(mnist):
    """50000/10000/10000 grey images in [0, 1] with labels 0..9, dynamically binarized by default."""
    for split, n in (("train", 50_000), ("valid", 10_000), ("test", 10_000)):
        d = mnist[split]
        assert len(d) == n and d.x.shape == (n, 1, 28, 28) and d.x.dtype == torch.float32
        assert d.x.min() == 0 and d.x.max() == 1
        assert d.y.shape == (n,) and set(d.y.unique().tolist()) == set(range(10))
        assert d.binarize == "dynamic" and d.split == split and d.image_shape == (1, 28, 28)
        assert 0.05 < d.x.mean() < 0.25  # dark background, bright strokes
        grey = ((d.x > 0) & (d.x < 1)).float().mean()
        assert grey > 0.01  # grey levels, not a binarized copy


def test_mnist_valid_is_the_end_of_the_official_training_set(mnist):
    """valid = the last 10,000 official training images, train = the first 50,000, test = the test set."""
    import torchvision

    official = torchvision.datasets.MNIST(str(data.data_root()), train=True, download=False)
    x = official.data.unsqueeze(1).float() / 255
    assert torch.equal(mnist["train"].x, x[:50_000]) and torch.equal(mnist["valid"].x, x[50_000:])
    assert torch.equal(mnist["valid"].y, official.targets[50_000:])


def test_mnist_classes_keeps_only_those_labels(mnist):
    d = data.load("mnist", "test", classes=[2, 6, 9])
    assert set(d.y.unique().tolist()) == {2, 6, 9}
    expected = torch.isin(mnist["test"].y, torch.tensor([2, 6, 9]))
    assert len(d) == int(expected.sum())
    assert torch.equal(d.x, mnist["test"].x[expected])


def test_mnist_static_binarization_is_binary_and_fixed():
    require("MNIST")
    a, b = data.load("mnist", "test", binarize="static"), data.load("mnist", "test", binarize="static")
    assert a.binarize == "static" and is_binary(a.x)
    assert torch.equal(a.x, b.x)


def test_binarized_mnist_static_splits():
    """Larochelle's fixed binarization: 0/1 pixels, 50000/10000/10000 images, no labels."""
    require("BinarizedMNIST")
    for split, n in (("train", 50_000), ("valid", 10_000), ("test", 10_000)):
        d = data.load("binarized_mnist", split)
        assert d.x.shape == (n, 1, 28, 28) and d.binarize == "static" and d.y is None
        assert is_binary(d.x)
        assert 0.1 < d.x.mean() < 0.2


def test_binarized_mnist_reads_amat_gz_like_the_npz(tmp_path):
    """Without the npz copy the .amat.gz text file is read, and it holds the same images."""
    require("BinarizedMNIST")
    source = data.data_root() / "BinarizedMNIST" / "binarized_mnist_test.amat.gz"
    (tmp_path / "BinarizedMNIST").mkdir()
    (tmp_path / "BinarizedMNIST" / source.name).symlink_to(source)
    from_amat = data.load("binarized_mnist", "test", root=tmp_path)
    assert torch.equal(from_amat.x, data.load("binarized_mnist", "test").x)


def test_fashion_mnist_is_grey_by_default():
    require("FashionMNIST")
    d = data.load("fashion_mnist", "test")
    assert d.x.shape == (10_000, 1, 28, 28) and d.binarize == "none"
    assert ((d.x > 0) & (d.x < 1)).float().mean() > 0.1


def test_omniglot_splits(omniglot):
    """28x28 characters with strokes = 1 (the minority of pixels); 964 background characters split 18/2
    drawers into train/valid, 659 evaluation characters x 20 drawers as test."""
    sizes = {"train": 964 * 18, "valid": 964 * 2, "test": 659 * 20}
    for split, d in omniglot.items():
        assert d.x.shape == (sizes[split], 1, 28, 28)
        assert d.x.min() >= 0 and d.x.max() <= 1
        assert 0.02 < d.x.mean() < 0.5
        assert d.binarize == "dynamic"
    assert set(omniglot["train"].y.tolist()) == set(range(964)) == set(omniglot["valid"].y.tolist())
    assert set(omniglot["test"].y.tolist()) == set(range(659))


def test_omniglot_drawer_split():
    """omniglot_drawers: every one of the 1,623 characters of all 50 alphabets, drawers 1-15 in train and 16-20
    in test (the same images as drawers 1-15 / 16-20 of Lake's background and evaluation splits), no valid;
    a seeded subset of the test split covers most alphabets, where the first 300 images cover one."""
    require("omniglot-npz")
    train, test = (data.load("omniglot_drawers", s) for s in ("train", "test"))
    assert len(train) == 1623 * 15 == 24_345 and len(test) == 1623 * 5
    assert torch.equal(train.y.view(1623, 15)[:, 0], torch.arange(1623))
    assert torch.equal(test.y.view(1623, 5), torch.arange(1623).repeat_interleave(5).view(1623, 5))
    lake_train, lake_valid, lake_test = (data.load("omniglot", s) for s in ("train", "valid", "test"))
    torch.testing.assert_close(train.x.view(1623, 15, 28, 28)[:964], lake_train.x.view(964, 18, 28, 28)[:, :15])
    torch.testing.assert_close(test.x.view(1623, 5, 28, 28)[:964, 3:], lake_valid.x.view(964, 2, 28, 28))
    torch.testing.assert_close(test.x.view(1623, 5, 28, 28)[964:], lake_test.x.view(659, 20, 28, 28)[:, 15:])
    with pytest.raises(ValueError, match="no valid split"):
        data.load("omniglot_drawers", "valid")
    names = data.omniglot_alphabets(drawers=True)
    assert len(names) == 1623 and len(set(names)) == 50
    assert len({names[c] for c in test.subset(300, seed=0).y.tolist()}) >= 40
    assert len({names[c] for c in test.subset(300, seed=None).y.tolist()}) <= 2
    greek = data.load("omniglot_drawers", "test", alphabets=["Greek"])
    assert len(greek) == 24 * 5


def test_omniglot_alphabets_select_characters(omniglot):
    """An alphabet keeps its characters (Greek: 24, drawers 1-18 in train and 19-20 in valid), the same
    characters as the full split; an unknown name is an error that lists the choices; the selection is part
    of the cache spec, so two alphabets of the same size do not share checkpoints."""
    names = data.omniglot_alphabets("train")
    assert len(names) == 964 and len(data.omniglot_alphabets("test")) == 659 and len(set(names)) == 30
    greek = data.load("omniglot", "train", alphabets=["Greek"])
    assert len(greek) == 24 * 18 and {names[c] for c in greek.y.tolist()} == {"Greek"}
    full = omniglot["train"]
    torch.testing.assert_close(greek.x, full.x[torch.isin(full.y, greek.y.unique())])
    assert len(data.load("omniglot", "valid", alphabets=["Greek"])) == 24 * 2
    with pytest.raises(ValueError, match="Tengwar"):  # the test split has the evaluation alphabets
        data.load("omniglot", "test", alphabets=["Greek"])
    arcadian, latin = (data.load("omniglot", "train", alphabets=[a]) for a in ("Arcadian", "Latin"))
    assert len(arcadian) == len(latin) and arcadian.spec != latin.spec
    with pytest.raises(ValueError, match="Omniglot"):
        data.load("mnist", "test", alphabets=["Greek"])


def test_load_rejects_unknown_names():
    with pytest.raises(ValueError, match="cifar"):
        data.load("cifar", "train")
    with pytest.raises(ValueError, match="validation"):
        data.load("mnist", "validation")
    with pytest.raises(ValueError, match="sometimes"):
        data.load("mnist", "train", binarize="sometimes")
    with pytest.raises(ValueError, match="static"):
        data.load("binarized_mnist", "train", binarize="dynamic")


# --- batches and binarization on synthetic data ------------------------------------------------------------


def grey_set(n: int = 100, binarize: str = "dynamic") -> ImageSet:
    g = torch.Generator().manual_seed(12345)  # not 0: that stream is the binarization's own (u < u is never true)
    return ImageSet("grey", "train", torch.rand(n, 1, 4, 4, generator=g), torch.arange(n), binarize)


def test_batches_same_seed_same_batches():
    d = grey_set()
    a, b = list(batches(d, 32, seed=5)), list(batches(d, 32, seed=5))
    assert len(a) == 4 and [len(x) for x, _ in a] == [32, 32, 32, 4]
    for (xa, ya), (xb, yb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_batches_different_seed_different_order_same_images():
    d = grey_set()
    ya = torch.cat([y for _, y in batches(d, 32, seed=5)])
    yb = torch.cat([y for _, y in batches(d, 32, seed=6)])
    assert not torch.equal(ya, yb)
    assert sorted(ya.tolist()) == sorted(yb.tolist()) == list(range(100))  # a permutation: each image once


def test_batches_without_shuffle_and_drop_last():
    d = grey_set(binarize="none")
    got = list(batches(d, 32, shuffle=False, drop_last=True))
    assert len(got) == 3
    assert torch.equal(torch.cat([y for _, y in got]), torch.arange(96))
    assert torch.equal(got[0][0], d.x[:32])  # 'none': grey levels pass through


def test_dynamic_binarization_is_binary_and_fresh_each_epoch():
    """Dynamic batches are 0/1 samples with the grey levels as probabilities; another seed resamples."""
    d = grey_set(2000)
    x1 = torch.cat([x for x, _ in batches(d, 500, shuffle=False, seed=0)])
    x2 = torch.cat([x for x, _ in batches(d, 500, shuffle=False, seed=1)])
    assert set(x1.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(x1, x2)
    assert abs(x1.mean().item() - d.x.mean().item()) < 0.01
    assert torch.equal(x1, torch.cat([x for x, _ in batches(d, 500, shuffle=False, seed=0)]))


def test_static_set_is_not_resampled():
    d = grey_set(binarize="static")
    d = ImageSet(d.name, d.split, (d.x > 0.5).float(), d.y, "static")
    assert torch.equal(torch.cat([x for x, _ in batches(d, 30, shuffle=False)]), d.x)


def test_fixed_binarization_is_repeatable():
    d = grey_set(500)
    a, b, c = d.fixed_binarization(0), d.fixed_binarization(0), d.fixed_binarization(1)
    assert a.binarize == "static" and set(a.x.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(a.x, b.x) and not torch.equal(a.x, c.x)
    assert torch.equal(a.y, d.y)
    # a fixed binarization is not resampled by batches()
    assert torch.equal(torch.cat([x for x, _ in batches(a, 64, shuffle=False, seed=9)]), a.x)
    static = ImageSet("s", "train", a.x, None, "static")
    assert static.fixed_binarization(3) is static


def test_subset_and_spec():
    d = grey_set()
    assert len(d.subset(10, seed=None)) == 10 and torch.equal(d.subset(10, seed=None).x, d.x[:10])
    assert d.subset(0, seed=None) is d and d.subset(len(d), seed=1) is d


def test_subset_needs_a_seed():
    """An unseeded call is an error: every caller says whether it takes the first n (seed=None) or a draw."""
    with pytest.raises(TypeError, match="seed"):
        grey_set().subset(10)


def test_every_subset_call_passes_a_seed():
    """No call of ``.subset`` in the package, the chapters or the benchmarks leaves the seed out (a call that
    does would fail at run time; this finds it without running the chapter)."""
    import ast

    root = Path(__file__).resolve().parents[2]
    unseeded = []
    for path in [*root.glob("c2f/**/*.py"), *root.glob("notebooks/*.py"), *root.glob("benchmarks/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "subset"
                    and len(node.args) < 2 and "seed" not in {k.arg for k in node.keywords}):
                unseeded.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not unseeded, f"subset called without a seed at {unseeded}"


def test_subset_larger_than_the_set_is_an_error_naming_the_sizes():
    d = grey_set()
    with pytest.raises(ValueError, match=r"asked for 101 images of grey train, which holds 100"):
        d.subset(101, seed=None)
    with pytest.raises(ValueError, match="holds 100"):
        d.subset(1000, seed=0)
    assert d.subset(10, seed=None).spec == {"name": "grey", "split": "train", "binarize": "dynamic", "n": 10}
    r = d.subset(10, seed=3)
    assert len(r) == 10 and torch.equal(r.x, d.subset(10, seed=3).x) and not torch.equal(r.x, d.subset(10, seed=4).x)
    assert r.spec["selection"] == "random 10 (seed 3)" and r.spec != d.subset(10, seed=None).spec
    assert len({tuple(row.flatten().tolist()) for row in r.x}) == 10  # without replacement


# --- missing data: a clear error, no network ---------------------------------------------------------------


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("a unit test tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_missing_binarized_mnist_names_the_file_and_c2f_data(tmp_path, monkeypatch, offline):
    import torchvision.datasets.utils as tv_utils

    tried = []

    def fail(url, root, *args, **kwargs):
        tried.append(url)
        raise urllib.error.URLError("network unavailable (test)")

    monkeypatch.setattr(tv_utils, "download_url", fail)
    with pytest.raises(DataNotFoundError) as info:
        data.load("binarized_mnist", "test", root=tmp_path)
    message = str(info.value)
    assert tried and tried[0].endswith("binarized_mnist_test.amat")
    assert "binarized_mnist_test.amat" in message and "C2F_DATA" in message and str(tmp_path) in message
    assert isinstance(info.value, FileNotFoundError)


def test_missing_mnist_names_the_files_and_c2f_data(tmp_path, monkeypatch, offline):
    import torchvision.datasets.mnist as tv_mnist

    def fail(url, *args, **kwargs):
        raise urllib.error.URLError("network unavailable (test)")

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", fail)
    with pytest.raises(DataNotFoundError) as info:
        data.load("mnist", "test", root=tmp_path)
    message = str(info.value)
    assert "MNIST" in message and "ubyte" in message and "C2F_DATA" in message
    assert str(tmp_path / "MNIST" / "raw") in message  # where to put the files


def test_missing_omniglot_names_the_files_and_c2f_data(tmp_path, monkeypatch, offline):
    import torchvision.datasets.omniglot as tv_omniglot

    def fail(url, *args, **kwargs):
        raise urllib.error.URLError("network unavailable (test)")

    monkeypatch.setattr(tv_omniglot, "download_and_extract_archive", fail)
    with pytest.raises(DataNotFoundError) as info:
        data.load("omniglot", "test", root=tmp_path)
    message = str(info.value)
    assert "Omniglot" in message and "images_evaluation.npz" in message and "C2F_DATA" in message


def test_data_root_follows_c2f_data(tmp_path, monkeypatch):
    monkeypatch.setenv("C2F_DATA", str(tmp_path))
    assert data.data_root() == tmp_path
    monkeypatch.delenv("C2F_DATA")
    assert data.data_root() == data.Path.home() / ".cache" / "c2f" / "data"


def test_labels_are_required_for_classes(tmp_path):
    """binarized_mnist has no labels: asking for classes is a clear error."""
    folder = tmp_path / "BinarizedMNIST"
    folder.mkdir()
    np.savez(folder / "binarized_mnist.npz", test=np.zeros((3, 784), dtype=np.uint8))
    with pytest.raises(ValueError, match="labels"):
        data.load("binarized_mnist", "test", classes=[1], root=tmp_path)
    assert len(data.load("binarized_mnist", "test", root=tmp_path)) == 3


def _fake_torchvision_omniglot(root, alphabets: dict[str, int], drawers: int):
    """torchvision's Omniglot layout under `root`: images_background/<alphabet>/characterNN/<id>_<drawer>.png;
    image (character c in sorted order, drawer d) has stroke pixels at (0, c) and (1, d)."""
    from PIL import Image

    top = root / "omniglot-py" / "images_background"
    index = 0
    for a in sorted(alphabets):
        for c in range(1, alphabets[a] + 1):
            folder = top / a / f"character{c:02d}"
            folder.mkdir(parents=True)
            for d in range(1, drawers + 1):
                img = np.full((105, 105), 255, dtype=np.uint8)
                img[0, index] = img[1, d] = 0
                Image.fromarray(img).save(folder / f"{index + 1:04d}_{d:02d}.png")
            index += 1


def test_omniglot_from_torchvision_folders_does_not_depend_on_the_listing_order(tmp_path, monkeypatch):
    """Characters are labelled in sorted (alphabet, character) order and drawers taken in file-name order,
    whatever order the file system lists them in (here: sorted, then reversed). The drawer split then
    always puts drawers 1-18 in train and 19-20 in valid."""
    import torchvision

    _fake_torchvision_omniglot(tmp_path, {"Beta": 2, "Alpha": 3}, drawers=20)
    monkeypatch.setattr(torchvision.datasets.Omniglot, "_check_integrity", lambda self: True)
    listdir = os.listdir
    results = []
    for order in (sorted, lambda names: sorted(names, reverse=True)):
        monkeypatch.setattr(os, "listdir", lambda path, order=order: order(listdir(path)))
        strokes, labels = data._omniglot_torchvision(tmp_path, background=True)
        results.append((strokes, labels, data.omniglot_alphabets("train", tmp_path),
                        data._omniglot(tmp_path, "valid")))
        monkeypatch.setattr(os, "listdir", listdir)
        assert strokes.shape == (5, 20, 105, 105)
        char = strokes[:, :, 0, :5].float().argmax(-1)  # the character index written into each image
        drawer = strokes[:, :, 1, 1:21].float().argmax(-1) + 1
        assert torch.equal(char, torch.arange(5)[:, None].expand(5, 20))
        assert torch.equal(drawer, torch.arange(1, 21).expand(5, 20))
        assert torch.equal(labels, torch.arange(5)[:, None].expand(5, 20))
    assert results[0][2] == results[1][2] == ["Alpha"] * 3 + ["Beta"] * 2
    (x0, y0), (x1, y1) = results[0][3], results[1][3]
    assert torch.equal(x0, x1) and torch.equal(y0, y1) and len(y0) == 5 * 2


def _fresh_mnist(tmp_path) -> Path:
    """A data root holding only MNIST's four .gz files, writable, nothing unpacked yet."""
    source = Path(os.environ.get("C2F_DATA") or data.data_root()) / "MNIST" / "raw"
    gz = sorted(source.glob("*.gz"))
    if len(gz) < 4:
        require("MNIST/raw/.gz (all four)")
        pytest.fail(f"{source} lacks MNIST's four .gz files")
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for file in gz:
        shutil.copyfile(file, raw / file.name)
    return tmp_path / "data"


def test_several_loaders_at_once_on_a_fresh_data_folder(tmp_path):
    """Three processes load MNIST at once from a folder where nothing is unpacked yet (`--jobs 3` on a fresh
    machine): each reads whole files, none a file that another is still unpacking."""
    root = _fresh_mnist(tmp_path)
    go = tmp_path / "go"  # every process imports first, then all load at the same moment
    code = ("import os, sys, time, torch; from c2f import data; open(sys.argv[2] + sys.argv[3], 'w').close()\n"
            "while not os.path.exists(sys.argv[2]): time.sleep(0.005)\n"
            "x = data.load('mnist', 'test', root=sys.argv[1]).x; print(len(x), float(x.sum()))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(root), str(go), str(i)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
             for i in range(3)]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("go?"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    go.touch()
    outputs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outputs]
    assert len({out for out, _ in outputs}) == 1 and outputs[0][0].startswith("10000 ")
    assert not list((root / "MNIST" / "raw").glob(".*.partial"))


def test_a_damaged_mnist_file_is_named_and_not_called_missing(tmp_path, offline):
    """Corrupt is not missing: a truncated .gz fails torchvision's md5; a truncated unpacked file is shorter
    than its header says; both are DataCorruptError naming the file and what to do."""
    root = _fresh_mnist(tmp_path)
    raw = root / "MNIST" / "raw"
    gz = raw / "t10k-labels-idx1-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:1000])
    with pytest.raises(data.DataCorruptError, match=re.escape(f"{gz} fails its md5 check")) as info:
        data.load("mnist", "test", root=root)
    assert not isinstance(info.value, DataNotFoundError)
    shutil.copyfile(Path(os.environ.get("C2F_DATA") or data.data_root()) / "MNIST" / "raw" / gz.name, gz)
    assert len(data.load("mnist", "test", root=root)) == 10000
    unpacked = raw / "t10k-images-idx3-ubyte"
    unpacked.write_bytes(unpacked.read_bytes()[:5000])
    with pytest.raises(data.DataCorruptError, match=re.escape(f"{unpacked} is truncated or garbled (5000 bytes, "
                                                              "its header says 7840016): delete it")):
        data.load("mnist", "test", root=root)
    unpacked.unlink()  # ... and it is unpacked again from its .gz
    assert len(data.load("mnist", "test", root=root)) == 10000


def test_an_unreadable_mnist_file_is_named_with_the_fix(tmp_path, offline, monkeypatch):
    """A file the loader may not read (permissions; simulated, since the tests may run as root) is a
    DataCorruptError naming the file and saying to fix its permissions, not 'missing'."""
    root = _fresh_mnist(tmp_path)
    assert len(data.load("mnist", "test", root=root)) == 10000  # unpacked
    unreadable = root / "MNIST" / "raw" / "t10k-images-idx3-ubyte"

    def guarded_open(file, *args, **kwargs):
        if Path(file) == unreadable:
            raise PermissionError(13, "Permission denied", str(file))
        return open(file, *args, **kwargs)
    monkeypatch.setattr(data, "open", guarded_open, raising=False)
    with pytest.raises(data.DataCorruptError, match=re.escape(f"{unreadable} cannot be read (PermissionError: "
                                                              "Permission denied); fix its permissions")) as info:
        data.load("mnist", "test", root=root)
    assert not isinstance(info.value, DataNotFoundError)


def test_a_truncated_npz_is_named(tmp_path):
    folder = tmp_path / "BinarizedMNIST"
    folder.mkdir()
    np.savez(folder / "binarized_mnist.npz", test=np.zeros((3, 784), dtype=np.uint8))
    npz = folder / "binarized_mnist.npz"
    npz.write_bytes(npz.read_bytes()[:100])
    with pytest.raises(data.DataCorruptError, match=re.escape(f"{npz} cannot be read as .npz")):
        data.load("binarized_mnist", "test", root=tmp_path)


def test_a_loader_waits_while_another_process_prepares_the_folder(tmp_path):
    """While one process holds the data set's lock (it is unpacking), another loader waits instead of reading
    half-written files, and loads once the lock is released."""
    import fcntl

    root = _fresh_mnist(tmp_path)
    ready = tmp_path / "ready"
    code = ("import sys, torch; from c2f import data; open(sys.argv[2], 'w').close(); "
            "print(len(data.load('mnist', 'test', root=sys.argv[1])))")
    with open(root / "MNIST" / ".c2f-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.Popen([sys.executable, "-c", code, str(root), str(ready)], stdout=subprocess.PIPE,
                                text=True, cwd=Path(__file__).resolve().parents[2])
        deadline = time.monotonic() + 120
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(3)
        assert proc.poll() is None and not (root / "MNIST" / "raw" / "t10k-images-idx3-ubyte").exists()
        fcntl.flock(lock, fcntl.LOCK_UN)
    assert proc.communicate(timeout=300)[0].strip() == "10000" and proc.returncode == 0


@pytest.mark.parametrize("chapter, parameter, name, split, classes", [
    ("03_convdraw", "train_size", "omniglot_drawers", "train", None),  # the smallest training set chapter 03 subsets
    ("03_convdraw", "test_size", "omniglot_drawers", "test", None),  # and its smallest test set
    ("05_discrete", "compare_train_size", "mnist", "train", [2, 6, 9]),
    ("05_discrete", "test_size", "mnist", "test", [2, 6, 9]),
    ("05_discrete", "short_train_size", "mnist", "train", None),
])
def test_a_size_bound_is_the_size_of_the_data_it_names(chapter, parameter, name, split, classes):
    """The schema refuses a size the data cannot give before anything runs, so its bound must be the data's
    size: not larger (the kernel would fail later, in ImageSet.subset), not smaller (a valid size refused)."""
    import yaml

    from c2f.book.chapters import chapter_path

    require("omniglot-npz" if name.startswith("omniglot") else "MNIST")
    rule = yaml.safe_load(chapter_path(chapter).with_suffix(".yml").read_text())["schema"][parameter]
    n = len(data.load(name, split, classes=classes))
    assert rule["max"] == n and str(n) in rule["data"]
