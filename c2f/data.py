"""Datasets held whole as tensors on the compute device, and a seeded batch iterator.

Every loader reads from one data root: ``$C2F_DATA`` if set, else ``~/.cache/c2f/data``. On a machine with
internet access the files are downloaded there the normal way (torchvision for MNIST, FashionMNIST and
Omniglot; Larochelle's server for the static binarized MNIST). Offline, point ``C2F_DATA`` at a folder that
already holds them in the same layout. Missing data that cannot be downloaded raises
:class:`DataNotFoundError`, which says what is missing and how to provide it; a damaged file (an MNIST .gz
failing torchvision's md5, an unpacked file shorter than its header says, an .npz that does not load) raises
:class:`DataCorruptError`, which names the file and what to do. Unpacking is done by one process at a time
(a lock file in the data set's folder) through a temporary name and a rename, so that several runs can share
a fresh data folder.

Splits: ``train`` and ``valid`` come from the official training set (the last 10,000 images are ``valid``,
as in Larochelle's static split), ``test`` is the official test set. Omniglot comes in two splits:
``omniglot`` is Lake et al.'s (background alphabets for ``train``/``valid``, the evaluation alphabets for
``test``), ``omniglot_drawers`` is Burda et al.'s kind of split, by drawers within each character: all 1,623
characters of the 50 alphabets, drawers 1-15 of every character in ``train`` (24,345 images) and drawers 16-20
in ``test`` (8,115), no ``valid``.
"""

from __future__ import annotations

import fcntl
import gzip
import json
import os
import shutil
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

DATASETS = ("mnist", "fashion_mnist", "binarized_mnist", "omniglot", "omniglot_drawers")
SPLITS = ("train", "valid", "test")
BINARIZATIONS = ("dynamic", "static", "none")
VALID_SIZE = 10_000
LAROCHELLE_URL = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"


class DataNotFoundError(FileNotFoundError):
    """A dataset is neither on disk nor downloadable."""


class DataCorruptError(ValueError):
    """A data file is there but damaged: truncated, garbled, unreadable (the message names it and the fix)."""


def data_root() -> Path:
    """The folder every dataset is read from (and downloaded to): ``$C2F_DATA`` or ``~/.cache/c2f/data``."""
    return Path(os.environ.get("C2F_DATA") or Path.home() / ".cache" / "c2f" / "data").expanduser()


@dataclass(frozen=True)
class ImageSet:
    """A whole split as one tensor.

    ``x`` is float in [0, 1] with shape [N, C, H, W]; ``y`` holds integer labels (or None);
    ``binarize`` says how batches are binarized: ``dynamic`` (a fresh Bernoulli sample of every pixel each
    time an image is drawn), ``static`` (``x`` is already 0/1) or ``none`` (grey levels).
    """

    name: str
    split: str
    x: torch.Tensor
    y: torch.Tensor | None
    binarize: str
    selection: str = ""  # which classes or alphabets were kept, when not all

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.x.shape[1:])

    @property
    def spec(self) -> dict:
        """What identifies this data for caching: dataset, split, binarization, selection, size."""
        spec = {"name": self.name, "split": self.split, "binarize": self.binarize, "n": len(self)}
        return {**spec, "selection": self.selection} if self.selection else spec

    def subset(self, n: int, seed: int | None) -> "ImageSet":
        """`n` images (all of them when n is 0): with an integer `seed`, n images drawn at random without
        replacement, in random order, the same for the same seed: the way to take part of a split stored in class
        order (Larochelle's binarized MNIST test set runs from the zeros to the nines, Omniglot character by
        character); with ``seed=None``, stated at the call, the first n in stored order. The seed has no default,
        so that no caller takes the first n images of a sorted split without saying so. Asking for more images
        than the set holds is an error, not a silent "all": the record would keep a size that never ran."""
        if n > len(self):
            kept = f" ({self.selection})" if self.selection else ""
            raise ValueError(f"asked for {n} images of {self.name} {self.split}{kept}, which holds {len(self)}; "
                             "pass 0 for all of them or a smaller size")
        if n <= 0 or n == len(self):
            return self
        if seed is None:
            return replace(self, x=self.x[:n], y=None if self.y is None else self.y[:n])
        keep = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n].to(self.x.device)
        selection = ", ".join(filter(None, [self.selection, f"random {n} (seed {seed})"]))
        return replace(self, x=self.x[keep], y=None if self.y is None else self.y[keep], selection=selection)

    def fixed_binarization(self, seed: int = 0) -> "ImageSet":
        """Sample one binarization with `seed` and keep it, so that evaluations are repeatable."""
        if self.binarize != "dynamic":
            return self
        g = torch.Generator(device=self.x.device).manual_seed(seed)
        return replace(self, x=torch.bernoulli(self.x, generator=g), binarize="static")

    def to(self, device: torch.device | str) -> "ImageSet":
        return replace(self, x=self.x.to(device), y=None if self.y is None else self.y.to(device))


def load(
    name: str,
    split: str,
    *,
    device: torch.device | str = "cpu",
    binarize: str | None = None,
    classes: list[int] | None = None,
    alphabets: list[str] | None = None,
    root: str | Path | None = None,
) -> ImageSet:
    """Load a split of a dataset onto `device`.

    `binarize` defaults to ``dynamic`` for MNIST and Omniglot, ``static`` for binarized_mnist (the only
    choice there) and ``none`` for FashionMNIST. `classes` keeps only those labels. `alphabets` (Omniglot
    only) keeps the characters of those alphabets (see :func:`omniglot_alphabets`); labels stay the
    character indices of the split.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {DATASETS}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    default = {"binarized_mnist": "static", "fashion_mnist": "none"}.get(name, "dynamic")
    binarize = binarize or default
    if binarize not in BINARIZATIONS:
        raise ValueError(f"unknown binarization {binarize!r}; choose one of {BINARIZATIONS}")
    if name == "binarized_mnist" and binarize != "static":
        raise ValueError("binarized_mnist is Larochelle's fixed binarization: use binarize='static'")
    if alphabets is not None and not name.startswith("omniglot"):
        raise ValueError(f"alphabets select Omniglot characters; {name} has none")
    root = Path(root) if root is not None else data_root()

    x, y = _READERS[name](root, split)
    if alphabets is not None:
        names = omniglot_alphabets(split, root, drawers=name == "omniglot_drawers")
        unknown = sorted(set(alphabets) - set(names))
        if unknown:
            raise ValueError(f"unknown Omniglot alphabet(s) {unknown} for split {split!r}; "
                             f"choose from {sorted(set(names))}")
        keep = torch.tensor([names[c] in alphabets for c in range(len(names))])[y]
        x, y = x[keep], y[keep]
    if classes is not None:
        if y is None:
            raise ValueError(f"{name} has no labels to select classes from")
        keep = torch.isin(y, torch.as_tensor(classes))
        x, y = x[keep], y[keep]
    if binarize == "static" and name != "binarized_mnist":
        x = torch.bernoulli(x, generator=torch.Generator().manual_seed(0))
    selection = ";".join(f"{what}={sorted(v)}" for what, v in (("classes", classes), ("alphabets", alphabets))
                         if v is not None)
    return ImageSet(name, split, x.to(device), None if y is None else y.to(device), binarize, selection)


def batches(
    data: ImageSet, batch_size: int, *, shuffle: bool = True, seed: int = 0, drop_last: bool = False
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Yield (x, y) minibatches; the order and the dynamic binarization depend only on `seed`."""
    n = len(data)
    g = torch.Generator(device=data.x.device).manual_seed(seed)
    order = torch.randperm(n, generator=g, device=data.x.device) if shuffle else None
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        idx = order[start : start + batch_size] if shuffle else slice(start, start + batch_size)
        x = data.x[idx]
        if data.binarize == "dynamic":  # a Bernoulli(x) draw: u < x for u ~ U[0, 1) (2.4x torch.bernoulli on a CPU)
            x = (torch.rand(x.shape, generator=g, device=x.device) < x).to(x.dtype)
        yield x, None if data.y is None else data.y[idx]


# --- readers: each returns (x float [N,1,28,28] in [0,1], y long [N] or None) for one split ---------------


def _missing(what: str, root: Path, how: str, err: Exception) -> DataNotFoundError:
    return DataNotFoundError(
        f"{what} is not under {root} and could not be downloaded ({type(err).__name__}: {err}).\n"
        f"{how}\nOr set C2F_DATA to a folder that already has it (currently {root})."
    )


def _split_train(x: torch.Tensor, y: torch.Tensor | None, split: str):
    if split == "test":
        return x, y
    cut = slice(None, -VALID_SIZE) if split == "train" else slice(-VALID_SIZE, None)
    return x[cut], None if y is None else y[cut]


def _torchvision_mnist(cls_name: str, folder: str):
    def read(root: Path, split: str):
        import torchvision

        cls = getattr(torchvision.datasets, cls_name)
        raw = root / folder / "raw"
        with _lock(root / folder):  # one process unpacks or downloads; the others wait, then read whole files
            _unpack(raw, cls.resources)
            try:
                ds = cls(str(root), train=split != "test", download=True)
            except DataCorruptError:
                raise
            except Exception as err:  # network errors come in many types
                raise _missing(
                    f"{cls_name} ({folder}/raw/*-ubyte.gz)",
                    root,
                    f"Copy the four official .gz files to {raw}.",
                    err,
                ) from err
        x = ds.data.unsqueeze(1).float() / 255.0
        return _split_train(x, ds.targets.long(), split)

    return read


@contextmanager
def _lock(folder: Path):
    """An exclusive lock on `folder` (a ``.c2f-lock`` file in it) while one process prepares its files; none in
    a folder that cannot be written (there, nobody can unpack either)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / ".c2f-lock", "a")
    except OSError:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _unpack(raw: Path, resources: list[tuple[str, str]]) -> None:
    """Unpack each ``<name>.gz`` of torchvision's `resources` (checked against its md5 first) that has no
    unpacked file yet, through a temporary name and a rename; check every unpacked file against the size its
    header states. A damaged file is a :class:`DataCorruptError` that names it."""
    from torchvision.datasets.utils import check_integrity

    for name, md5 in resources:
        packed, unpacked = raw / name, raw / name.removesuffix(".gz")
        if not unpacked.exists() and packed.exists():
            if not check_integrity(str(packed), md5):
                raise DataCorruptError(f"{packed} fails its md5 check (expected {md5}): it is damaged or incomplete; "
                                       f"copy it again, or delete it to have it downloaded")
            partial = unpacked.with_name(f".{unpacked.name}.{os.getpid()}.partial")
            try:
                with gzip.open(packed) as source, open(partial, "wb") as target:
                    shutil.copyfileobj(source, target)
            except (OSError, EOFError) as err:
                partial.unlink(missing_ok=True)
                raise DataCorruptError(f"{packed} cannot be unpacked ({type(err).__name__}: {err}); copy it again") from err
            os.replace(partial, unpacked)
        if unpacked.exists():
            _check_idx(unpacked)


def _check_idx(path: Path) -> None:
    """An IDX file (MNIST's format) is readable and as long as its header says."""
    try:
        with open(path, "rb") as f:
            header = f.read(4)
            dims = header[3] if len(header) == 4 else 0
            shape = np.frombuffer(f.read(4 * dims), dtype=">u4") if dims else []
    except OSError as err:
        raise DataCorruptError(f"{path} cannot be read ({type(err).__name__}: {err.strerror or err}); fix its "
                               f"permissions or copy it again") from err
    expected = 4 + 4 * dims + int(np.prod(shape, dtype=np.int64)) if len(shape) == dims and dims else None
    if expected is None or path.stat().st_size != expected:
        raise DataCorruptError(f"{path} is truncated or garbled ({path.stat().st_size} bytes, its header says "
                               f"{expected}): delete it, and it is unpacked again from its .gz")


def _load_npz(path: Path, key: str) -> np.ndarray:
    """One array of an .npz file; a :class:`DataCorruptError` naming the file when it cannot be read."""
    try:
        with np.load(path) as f:
            return f[key]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise DataCorruptError(f"{path} cannot be read as .npz ({type(err).__name__}: {err}): it is damaged or "
                               f"incomplete; copy it again") from err


def _binarized_mnist(root: Path, split: str):
    folder = root / "BinarizedMNIST"
    npz = folder / "binarized_mnist.npz"
    if npz.exists():
        arr = _load_npz(npz, split)
    else:
        name = f"binarized_mnist_{split}.amat"
        path = next((p for p in (folder / name, folder / f"{name}.gz") if p.exists()), None)
        if path is None:
            from torchvision.datasets.utils import download_url

            try:
                download_url(LAROCHELLE_URL + name, str(folder))
            except Exception as err:
                raise _missing(
                    f"Larochelle's binarized MNIST ({name})",
                    root,
                    f"Copy binarized_mnist_{{train,valid,test}}.amat[.gz] or binarized_mnist.npz to {folder}.",
                    err,
                ) from err
            path = folder / name
        arr = np.loadtxt(path, dtype=np.uint8)
    x = torch.from_numpy(arr.astype(np.float32)).view(-1, 1, 28, 28)
    return x, None


def omniglot_alphabets(split: str = "train", root: str | Path | None = None, drawers: bool = False) -> list[str]:
    """The alphabet of every Omniglot character of a split, indexed by the character label that
    :func:`load` gives (``train``/``valid``: the 30 background alphabets; ``test``: the 20 evaluation ones;
    with `drawers`, the split ``omniglot_drawers``: all 50, background first, in every split)."""
    if drawers:
        return omniglot_alphabets("train", root) + omniglot_alphabets("test", root)
    root = Path(root) if root is not None else data_root()
    folder = "images_background" if split != "test" else "images_evaluation"
    ranges = root / "omniglot-npz" / "alphabet_ranges.json"
    if _omniglot_source(root, folder) == "npz":
        if not ranges.exists():
            raise DataNotFoundError(f"{ranges} is missing: it maps the characters of {folder}.npz to alphabets.")
        table = json.loads(ranges.read_text())["splits"][folder]
        return [a["alphabet"] for a in sorted(table, key=lambda a: a["first_id"]) for _ in range(a["n_characters"])]
    return [c.split("/")[0] for c in _omniglot_characters(_torchvision_omniglot(root, split != "test"))]


def _omniglot_source(root: Path, folder: str) -> str:
    """``npz`` when only the npz copy is under the data root, else ``torchvision``."""
    npz = root / "omniglot-npz" / f"{folder}.npz"
    return "npz" if not (root / "omniglot-py" / folder).exists() and npz.exists() else "torchvision"


def _omniglot_strokes(root: Path, background: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The strokes [characters, drawers, 105, 105] (True = stroke) and character labels [characters, drawers] of
    the background or evaluation alphabets: from torchvision's Omniglot folders when they are under the data
    root, else from the npz copy under ``omniglot-npz/`` (which keeps drawers: ``images[c, k]``), else
    downloaded by torchvision."""
    folder = "images_background" if background else "images_evaluation"
    if _omniglot_source(root, folder) == "npz":
        strokes = torch.from_numpy(~_load_npz(root / "omniglot-npz" / f"{folder}.npz", "images"))
        chars, drawers = strokes.shape[:2]
        return strokes, torch.arange(chars).repeat_interleave(drawers).view(chars, drawers)
    return _omniglot_torchvision(root, background)


def _omniglot_images(strokes: torch.Tensor, labels: torch.Tensor):
    """Strokes [characters, drawers, 105, 105] as images [N, 1, 28, 28] (area-resized, strokes = 1) and labels."""
    x = strokes.reshape(-1, 1, 105, 105).float()
    x = F.interpolate(x, size=(28, 28), mode="area").clamp(0, 1)
    return x, labels.reshape(-1).long()


def _omniglot(root: Path, split: str):
    """Omniglot characters, inverted (strokes = 1) and resized to 28x28 with antialiasing.

    ``train``/``valid`` are the background alphabets (drawers 1-18 / 19-20), ``test`` the evaluation
    alphabets. Labels are character indices (see :func:`_omniglot_strokes` for the sources).
    """
    background = split != "test"
    strokes, labels = _omniglot_strokes(root, background)
    if background:
        keep = slice(None, 18) if split == "train" else slice(18, None)
        strokes, labels = strokes[:, keep], labels[:, keep]
    return _omniglot_images(strokes, labels)


DRAWER_SPLIT = 15  # omniglot_drawers: drawers 1-15 of every character train, 16-20 test (Burda et al. 2016)


def _omniglot_drawers(root: Path, split: str):
    """All 1,623 Omniglot characters (background alphabets first, labels 0-1622), split by drawers within each
    character: drawers 1-15 ``train``, 16-20 ``test`` (the kind of split of Burda et al. 2016, 24,345 / 8,115
    images). It has no ``valid`` part."""
    if split == "valid":
        raise ValueError("omniglot_drawers has no valid split (drawers 1-15 train, 16-20 test); "
                         "take part of train, or use the omniglot split")
    parts = [_omniglot_strokes(root, background) for background in (True, False)]
    drawers = min(s.shape[1] for s, _ in parts)
    strokes = torch.cat([s[:, :drawers] for s, _ in parts])
    labels = torch.arange(len(strokes)).repeat_interleave(drawers).view(len(strokes), drawers)
    keep = slice(None, DRAWER_SPLIT) if split == "train" else slice(DRAWER_SPLIT, None)
    return _omniglot_images(strokes[:, keep], labels[:, keep])


def _torchvision_omniglot(root: Path, background: bool):
    import torchvision

    try:
        return torchvision.datasets.Omniglot(str(root), background=background, download=True)
    except Exception as err:
        raise _missing(
            "Omniglot",
            root,
            f"Copy images_background.npz / images_evaluation.npz (and alphabet_ranges.json) to "
            f"{root / 'omniglot-npz'}, or torchvision's Omniglot folders to {root / 'omniglot-py'}.",
            err,
        ) from err


def _omniglot_characters(ds) -> list[str]:
    """``alphabet/character`` of every character in torchvision's Omniglot folder, sorted by name (torchvision
    lists folders in the file system's order, which differs between machines): character labels are indices
    into this list."""
    top = Path(ds.target_folder)
    return [f"{a}/{c}" for a in sorted(os.listdir(top)) if (top / a).is_dir()
            for c in sorted(os.listdir(top / a)) if (top / a / c).is_dir()]


def _omniglot_torchvision(root: Path, background: bool):
    """Strokes [characters, drawers, 105, 105] and labels, characters in :func:`_omniglot_characters` order
    and drawers in file-name order (``<character>_<drawer>.png``), so that the drawer split is the same
    everywhere."""
    from PIL import Image

    ds = _torchvision_omniglot(root, background)
    top = Path(ds.target_folder)
    images = []
    for c in _omniglot_characters(ds):
        files = sorted(f for f in os.listdir(top / c) if f.endswith(".png"))
        images.append([torch.from_numpy(~np.array(Image.open(top / c / f).convert("L"), dtype=bool)) for f in files])
    drawers = min(len(v) for v in images)
    strokes = torch.stack([torch.stack(v[:drawers]) for v in images])
    labels = torch.arange(len(images)).repeat_interleave(drawers).view(len(images), drawers)
    return strokes, labels


_READERS = {
    "mnist": _torchvision_mnist("MNIST", "MNIST"),
    "fashion_mnist": _torchvision_mnist("FashionMNIST", "FashionMNIST"),
    "binarized_mnist": _binarized_mnist,
    "omniglot": _omniglot,
    "omniglot_drawers": _omniglot_drawers,
}

