"""One test set, one binarization: every seed of a trial is scored on the same test tensors (issue 20 §2)."""

from __future__ import annotations

import pytest
import torch

from c2f import evaluate as ev
from c2f.data import ImageSet
from c2f.experiment import Trial, run_trials
from c2f.models import VAE, VAEConfig, make_hierarchical
from c2f.models.hierarchical import HierarchicalConfig
from c2f.models.progressive import ProgressiveConfig, make_variant
from c2f.train import TrainConfig


def grey_test_set(n: int = 30) -> ImageSet:
    """Grey-level images binarized dynamically: each binarization seed gives other test tensors."""
    g = torch.Generator().manual_seed(0)
    return ImageSet("grey", "test", torch.rand(n, 1, 28, 28, generator=g), torch.arange(n) % 3, "dynamic")


@pytest.fixture
def seen(monkeypatch):
    """The image tensors every evaluation function of c2f.evaluate iterates over, in order."""
    tensors = []

    def recording(data, *args, **kwargs):
        tensors.append(data.x.clone())
        return batches(data, *args, **kwargs)

    batches = ev.batches
    monkeypatch.setattr(ev, "batches", recording)
    return tensors


def _models():
    torch.manual_seed(0)
    progressive = make_variant("standard", ProgressiveConfig(groups=3, group_size=2, hidden=(16,), merge_hidden=8))
    hierarchical = make_hierarchical("lvae", HierarchicalConfig(latent_dims=(3, 2), hidden=(16, 8)))
    return VAE(VAEConfig(latent_dim=3, hidden=(16,))), progressive, hierarchical


@pytest.mark.parametrize("name", ["evaluate", "latent_means", "prefix_curve", "prior_completed_curve",
                                  "layer_report"])
def test_two_seeds_see_the_same_test_tensors(name, seen):
    vae, progressive, hierarchical = _models()
    calls = {"evaluate": lambda s: ev.evaluate(vae, test, iw_samples=2, seed=s),
             "latent_means": lambda s: ev.latent_means(vae, test),
             "prefix_curve": lambda s: ev.prefix_curve(progressive, test, iw_samples=2, seed=s),
             "prior_completed_curve": lambda s: ev.prior_completed_curve(progressive, test, [1, 0, 2], seed=s),
             "layer_report": lambda s: ev.layer_report(hierarchical, test, iw_samples=2, seed=s)}
    test = grey_test_set()
    calls[name](0)
    first = list(seen)
    seen.clear()
    calls[name](1)
    assert first and len(seen) == len(first)
    for a, b in zip(first, seen):
        assert torch.equal(a, b), "seed 1 was scored on other test images than seed 0"
    assert torch.equal(first[0], test.fixed_binarization(ev.TEST_BINARIZATION_SEED).x)
    assert not torch.equal(first[0], test.fixed_binarization(1).x), "the test set is dynamically binarized"


def test_seeds_of_one_trial_share_the_test_images(tiny_images, isolated_cache, seen):
    """The way the chapters score a trial, with the trial's seed passed on to evaluate: the seeds differ by
    their training and their posterior samples only."""
    test = grey_test_set()
    trial = Trial("vae", lambda: VAE(VAEConfig(latent_dim=3, hidden=(16,))), TrainConfig(epochs=1, batch_size=32))
    score = lambda model, s: {"test_elbo_nats": ev.evaluate(model, test, seed=s)["elbo_nats"]}  # noqa: E731
    run_trials([trial], tiny_images, seeds=[0, 1, 2], score=score, key="evalseed")
    scored = [x for x in seen if x.shape[0] == len(test)]
    assert len(scored) == 3
    assert all(torch.equal(scored[0], x) for x in scored[1:])


def test_no_latent_baseline_is_on_the_same_images():
    test = grey_test_set()
    probs = torch.full((1, 28, 28), 0.5, dtype=torch.float64)
    train = ImageSet("grey", "train", probs.expand(4, 1, 28, 28).float(), None, "none")
    x = ev.evaluation_images(test).x.double()
    expected = torch.distributions.Bernoulli(probs=(probs * 4 + 1) / 6).log_prob(x).flatten(1).sum(-1).mean()
    assert ev.marginal_bernoulli_log_likelihood(train, test) == pytest.approx(expected.item())
