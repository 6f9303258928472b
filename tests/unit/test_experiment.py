"""The experiment helper: models × seeds → train (or load) → score → summary → record."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from c2f.book.records import Run
from c2f.data import ImageSet
from c2f.evaluate import evaluate
from c2f.experiment import Trial, parameter_count, run_trials, seed_list, splits
from c2f.models import VAE, VAEConfig
from c2f.train import TrainConfig

CFG = VAEConfig(arch="mlp", latent_dim=4, hidden=(16,))


def _score(test):
    return lambda model, seed: {"test_elbo_nats": evaluate(model, test, seed=seed)["elbo_nats"]}


def test_run_trials_trains_every_seed_summarises_and_logs(tiny_images, isolated_cache, isolated_records):
    run = Run("00_test", {"seed": 0})
    trials = [Trial("vae_mlp", lambda: VAE(CFG), TrainConfig(epochs=1, batch_size=32))]
    out = run_trials(trials, tiny_images, seeds=[0, 1], score=_score(tiny_images), run=run, key="t")["vae_mlp"]
    assert len(out.models) == len(out.runs) == len(out.histories) == 2
    assert out.model is out.models[0]
    values = [r["test_elbo_nats"] for r in out.runs]
    assert values[0] != values[1], "two seeds train two different models"
    assert out.summary["test_elbo_nats"] == pytest.approx(sum(values) / 2)
    assert out.summary["test_elbo_nats_worst"] == pytest.approx(min(values))
    assert run.metrics["vae_mlp/test_elbo_nats_std"] == pytest.approx(torch.tensor(values).std().item())
    assert sorted(p.name.split("-")[:3] for p in isolated_cache.iterdir()) == [["t", "vae_mlp", "seed0"],
                                                                             ["t", "vae_mlp", "seed1"]]


def test_run_trials_is_independent_of_what_ran_before(tiny_images, isolated_cache):
    """A model's initial weights depend on its seed only: the same trial gives the same score whether or
    not another model was built (and consumed random numbers) before it."""
    trial = Trial("vae_mlp", lambda: VAE(CFG), TrainConfig(epochs=1, batch_size=32))
    other = Trial("vae_wide", lambda: VAE(VAEConfig(arch="mlp", latent_dim=4, hidden=(32,))), trial.train)
    alone = run_trials([trial], tiny_images, seeds=[3], score=_score(tiny_images), key="a")
    after = run_trials([other, trial], tiny_images, seeds=[3], score=_score(tiny_images), key="b")
    assert alone["vae_mlp"].runs == after["vae_mlp"].runs
    assert "test_elbo_nats_std" not in alone["vae_mlp"].summary, "one seed has no spread"


def test_run_trials_rejects_duplicate_names_and_no_seeds(tiny_images):
    trial = Trial("vae_mlp", lambda: VAE(CFG), TrainConfig(epochs=1))
    with pytest.raises(ValueError, match="unique"):
        run_trials([trial, trial], tiny_images, seeds=[0], score=_score(tiny_images), key="x")
    with pytest.raises(ValueError, match="seed"):
        run_trials([trial], tiny_images, seeds=[], score=_score(tiny_images), key="x")


def test_run_trials_times_every_seed(tiny_images, isolated_cache):
    """Each seed's wall time covers training (or loading) and scoring, so a chapter need not run one trial at
    a time to time it."""
    def slow_score(model, seed):
        time.sleep(0.05)
        return _score(tiny_images)(model, seed)

    trial = Trial("vae_mlp", lambda: VAE(CFG), TrainConfig(epochs=1, batch_size=32))
    out = run_trials([trial], tiny_images, seeds=[0, 1], score=slow_score, key="timed")["vae_mlp"]
    assert len(out.wall_seconds) == 2
    assert all(w >= 0.05 + t for w, t in zip(out.wall_seconds, out.train_seconds)), "training and scoring"
    assert out.wall_s == pytest.approx(sum(out.wall_seconds))
    assert not any("wall" in k for k in out.summary), "timings are not metrics of the record"
    loaded = run_trials([trial], tiny_images, seeds=[0, 1], score=_score(tiny_images), key="timed")["vae_mlp"]
    assert loaded.runs == out.runs, "loading gives the same numbers"
    assert loaded.wall_s < out.wall_s


def test_seed_list():
    assert seed_list(3, 3) == [3, 4, 5] and seed_list(0, 1) == [0]
    with pytest.raises(ValueError, match="n_seeds"):
        seed_list(0, 0)


def test_parameter_count_counts_every_tensor():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 4))
    model[0].requires_grad_(False)
    assert parameter_count(model) == 3 * 2 + 2 + 2 * 4 + 4
    assert parameter_count(VAE(CFG)) == sum(p.numel() for p in VAE(CFG).parameters())


def test_splits_cut_the_training_split_and_the_others(monkeypatch, make_images):
    loaded = []

    def load(name, split, *, device, binarize):
        loaded.append((name, split, device, binarize))
        return make_images(40, seed=len(loaded))

    monkeypatch.setattr("c2f.experiment.datasets.load", load)
    train, valid, test = splits("mnist", device="cpu", train_size=30, test_size=10, binarize="dynamic")
    assert loaded == [("mnist", p, "cpu", "dynamic") for p in ("train", "valid", "test")]
    assert (len(train), len(valid), len(test)) == (30, 10, 10)
    assert torch.equal(test.x, make_images(40, seed=3).x[:10]), "the first test_size images"
    loaded.clear()
    train, test = splits("omniglot", device="cpu", test_size=5, parts=("train", "test"))
    assert [p for _, p, _, _ in loaded] == ["train", "test"] and loaded[0][3] is None
    assert (len(train), len(test)) == (40, 5), "0 keeps the whole split"


def test_splits_rounds_grey_levels_to_bits(monkeypatch):
    """`bits` rounds every pixel of every part to the nearest of 2**bits levels (after the cut to size)."""
    x = torch.tensor([0.0, 0.1, 0.3, 0.49, 0.51, 0.7, 0.9, 1.0]).reshape(2, 1, 2, 2)
    monkeypatch.setattr("c2f.experiment.datasets.load",
                        lambda name, split, *, device, binarize: ImageSet(name, split, x.clone(), None, binarize))
    train, test = splits("mnist", device="cpu", binarize="none", parts=("train", "test"), bits=1)
    assert train.x.flatten().tolist() == [0, 0, 0, 0, 1, 1, 1, 1] and torch.equal(test.x, train.x)
    (eight,) = splits("mnist", device="cpu", binarize="none", parts=("test",), test_size=1, bits=8)
    assert torch.equal(eight.x, (x[:1] * 255).round() / 255) and len(eight) == 1
    (plain,) = splits("mnist", device="cpu", binarize="none", parts=("test",))
    assert torch.equal(plain.x, x), "no bits: the images as loaded"
