"""The experiment helper: models × seeds → train (or load) → score → summary → record."""

from __future__ import annotations

import pytest
import torch

from c2f.evaluate import evaluate
from c2f.experiment import Trial, run_trials
from c2f.models import VAE, VAEConfig
from c2f.records import Run
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
