"""One experiment: models × seeds → train (or load from the cache) → score → mean ± std and worst → record.

A chapter describes each model as a :class:`Trial` (a name, a function that builds it untrained, its
training configuration) and hands the list to :func:`run_trials` with the seeds and a score function::

    results = run_trials([Trial("vae_conv", lambda: VAE(cfg).to(device), TrainConfig(epochs=6))],
                         train, seeds=[0, 1, 2], score=lambda model, seed: {...}, run=run, key="01")
    results["vae_conv"].summary["test_nll_nats"], results["vae_conv"].model

Every model is built right after ``torch.manual_seed(seed)``, so its initial weights depend on the seed alone
(not on what was trained or loaded before it), and trained with that seed. The summary of each model (see
:func:`c2f.evaluate.summarise`) is logged to the chapter's record under the model's name, and each seed's wall
time is kept in ``wall_seconds``. The setup every chapter shares lives here too: :func:`splits` (the data),
:func:`seed_list` (the seeds) and :func:`parameter_count`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import torch
from torch import nn

from c2f import data as datasets
from c2f.data import ImageSet
from c2f.evaluate import summarise
from c2f.train import TrainConfig, train_or_load, train_stages


@dataclass
class Trial:
    """One model of an experiment."""

    name: str  # its name in the record, the figures and the checkpoint cache, e.g. "vae_conv"
    build: Callable[[], nn.Module]  # returns the untrained model on the run's device
    train: TrainConfig  # how to train it; the seed is set per seed
    data: ImageSet | None = None  # its training images, when they differ from the experiment's


@dataclass
class Outcome:
    """What one model of an experiment gave, for every seed (in the order of the seeds)."""

    name: str
    seeds: list[int]
    models: list[nn.Module] = field(default_factory=list)
    histories: list[Any] = field(default_factory=list)  # fit's history (a list of them for stage-wise models)
    runs: list[dict] = field(default_factory=list)  # the score of each seed
    wall_seconds: list[float] = field(default_factory=list)  # each seed's build, train (or load) and score, s
    summary: dict = field(default_factory=dict)  # mean, and with several seeds `_std` and `_worst`

    @property
    def model(self) -> nn.Module:
        """The model of the first seed (the one the figures show)."""
        return self.models[0]

    @property
    def history(self):
        return self.histories[0]

    @property
    def wall_s(self) -> float:
        """Wall time of the whole trial in this run: building, training (or loading) and scoring every seed."""
        return sum(self.wall_seconds)

    @property
    def train_seconds(self) -> list[float]:
        """Training wall time of each seed: the sum of its epochs' ``time_s`` (every stage of a stage-wise
        model), as measured when it was trained (a cached model keeps the time of the run that trained it)."""
        def total(h):
            return sum(total(s) for s in h) if isinstance(h, list) else sum(h["epochs"].get("time_s", [float("nan")]))
        return [total(h) for h in self.histories]


def seed_list(seed: int, n_seeds: int) -> list[int]:
    """The seeds of a chapter's `n_seeds` independent runs: `seed`, `seed` + 1, ..."""
    if n_seeds < 1:
        raise ValueError(f"n_seeds must be at least 1, got {n_seeds}")
    return [seed + i for i in range(n_seeds)]


def parameter_count(model: nn.Module) -> int:
    """The number of a model's parameters (every tensor of ``model.parameters()``, trainable or frozen)."""
    return sum(p.numel() for p in model.parameters())


def splits(name: str, *, device, train_size: int = 0, test_size: int = 0, binarize: str | None = None,
           parts: Sequence[str] = ("train", "valid", "test"), bits: int | None = None,
           subset_seed: int | None = None) -> tuple[ImageSet, ...]:
    """A chapter's data: the `parts` of data set `name` (see :func:`c2f.data.load`), in that order, the
    training split cut to `train_size` images and every other part to `test_size` (0: all of it): the first
    ones, or with `subset_seed` a random draw seeded by it (see :meth:`c2f.data.ImageSet.subset`; a split
    stored in class order, such as Omniglot's, needs one). With `bits` (grey levels, ``binarize="none"``) every pixel is rounded to the nearest of
    the 2**bits levels k / (2**bits − 1): ``bits=8`` gives the 8-bit images a codec compresses (a resized
    data set such as Omniglot has levels in between)::

        train, valid, test = splits("mnist", device=device, train_size=train_size, test_size=test_size)
    """
    sets = [datasets.load(name, part, device=device, binarize=binarize) for part in parts]
    sets = [s.subset(train_size if part == "train" else test_size, seed=subset_seed) for part, s in zip(parts, sets)]
    if bits is not None:
        top = 2 ** bits - 1
        sets = [replace(s, x=(s.x * top).round() / top) for s in sets]
    return tuple(sets)


def train_model(model: nn.Module, data: ImageSet, cfg: TrainConfig, *, name: str, valid: ImageSet | None = None,
                retrain: bool = False):
    """Train `model` (or load it from the cache): stage by stage when it has ``num_stages`` > 1."""
    if int(getattr(model, "num_stages", 1)) > 1:
        return train_stages(model, data, cfg, name=name, valid=valid, retrain=retrain)
    return train_or_load(model, data, cfg, name=name, valid=valid, retrain=retrain)


def run_trials(trials: Sequence[Trial], train: ImageSet, *, seeds: Sequence[int],
               score: Callable[[nn.Module, int], dict], run=None, key: str, valid: ImageSet | None = None,
               retrain: bool = False, log_prefix: str = "", keep_models: bool = True) -> dict[str, Outcome]:
    """Train every trial with every seed, score each trained model, summarise over seeds.

    `score(model, seed)` returns the metrics of one trained model (scalars; other values are kept in
    ``runs`` but not summarised). The checkpoint of a model is cached as ``{key}-{name}-seed{seed}``, so
    `key` (the chapter, e.g. ``"01"``, plus any tag) keeps chapters apart. With `run` (a
    :class:`c2f.book.records.Run`) each summary is logged as ``{log_prefix}{name}/<metric>``. With
    `keep_models` False only the first seed's model is kept (the others are released after scoring). Each
    seed's wall time (build, train or load, score) is kept in ``wall_seconds``, not logged.
    """
    names = [t.name for t in trials]
    if len(set(names)) != len(names):
        raise ValueError(f"trial names must be unique, got {names}")
    if not seeds:
        raise ValueError("run_trials needs at least one seed")
    results = {t.name: Outcome(t.name, list(seeds)) for t in trials}
    for trial in trials:
        out = results[trial.name]
        for s in seeds:
            start = time.perf_counter()
            torch.manual_seed(s)
            model = trial.build()
            history = train_model(model, trial.data or train, replace(trial.train, seed=s),
                                  name=f"{key}-{trial.name}-seed{s}", valid=valid, retrain=retrain)
            out.runs.append(score(model, s))
            out.wall_seconds.append(time.perf_counter() - start)
            out.histories.append(history)
            if keep_models or not out.models:
                out.models.append(model)
        out.summary = summarise(out.runs)
        if run is not None:
            run.log(f"{log_prefix}{trial.name}", out.summary)
    return results


def mnist_classifier(device, *, run=None, retrain: bool = False, epochs: int = 2,
                     train_size: int = 0):
    """The book's MNIST classifier, a measuring instrument for what a latent edit does to the class: trained
    once (seed 0) on the grey-level training images (all 50,000 when `train_size` is 0) and cached as
    ``mnist-classifier-seed0``, so every chapter that asks for it with the same arguments loads the same
    network. Returns it with its accuracy on the 10,000 test images (logged to `run` as
    ``classifier/test_accuracy``)."""
    from c2f.models.classifier import Classifier, ClassifierConfig  # only the chapters that use it import it

    train = datasets.load("mnist", "train", device=device, binarize="none").subset(train_size, seed=None)
    test = datasets.load("mnist", "test", device=device, binarize="none")
    trial = Trial("classifier", lambda: Classifier(ClassifierConfig()).to(device),
                  TrainConfig(epochs=epochs, batch_size=128, lr=1e-3))
    score = lambda model, seed: {"test_accuracy": (model.predict(test.x) == test.y).float().mean().item()}  # noqa: E731
    out = run_trials([trial], train, seeds=[0], score=score, run=run, key="mnist", retrain=retrain)["classifier"]
    return out.model, out.summary["test_accuracy"]
