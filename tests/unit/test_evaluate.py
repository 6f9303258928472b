"""Evaluation: the importance-weighted likelihood against a model whose log p(x) is known exactly, evaluate()
end to end on that model, active units and summaries over seeds."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence

from c2f.data import ImageSet
from c2f.evaluate import (active_units, class_kept, describe, evaluate, higher_is_better, iw_curve,
                          iw_log_likelihood, latent_means, summarise)
from c2f.objectives import ElboTerms

D_Z, D_X, SIGMA = 2, 6, 0.5


class LinearGaussian(nn.Module):
    """z ~ N(0, I_d), x | z ~ N(Wz + b, σ²I): log p(x) = log N(x; b, WWᵀ + σ²I) in closed form.

    The proposal q(z | x) is chosen by `q`: ``prior`` (q = p(z)), ``exact`` (the true full-covariance
    posterior, which makes every importance weight equal p(x)) or ``imperfect`` (a diagonal Gaussian with a
    shifted mean and inflated variances). Images are [B, 1, 1, D_X]; everything is float64.
    """

    def __init__(self, q: str = "imperfect", seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.W = nn.Parameter(torch.randn(D_X, D_Z, generator=g, dtype=torch.float64))
        self.b = nn.Parameter(torch.randn(D_X, generator=g, dtype=torch.float64))
        self.q = q

    # the exact quantities
    def marginal(self) -> MultivariateNormal:
        cov = self.W @ self.W.T + SIGMA**2 * torch.eye(D_X, dtype=torch.float64)
        return MultivariateNormal(self.b, covariance_matrix=cov)

    def exact_log_px(self, x: torch.Tensor) -> torch.Tensor:
        return self.marginal().log_prob(x.reshape(x.shape[0], -1))

    def posterior(self, x: torch.Tensor) -> MultivariateNormal:
        x = x.reshape(x.shape[0], -1)
        cov = torch.linalg.inv(torch.eye(D_Z, dtype=torch.float64) + self.W.T @ self.W / SIGMA**2)
        mean = (x - self.b) @ self.W @ cov / SIGMA**2  # cov is symmetric
        return MultivariateNormal(mean, covariance_matrix=cov.expand(x.shape[0], D_Z, D_Z))

    # the model interface evaluate() uses
    def prior(self, n: int) -> Independent:
        zeros = torch.zeros(n, D_Z, dtype=torch.float64)
        return Independent(Normal(zeros, torch.ones_like(zeros)), 1)

    def encode(self, x: torch.Tensor):
        if self.q == "prior":
            return self.prior(x.shape[0])
        post = self.posterior(x)
        if self.q == "exact":
            return post
        std = post.covariance_matrix.diagonal(dim1=-2, dim2=-1).sqrt()
        return Independent(Normal(post.mean + 0.3 * std, 1.5 * std), 1)

    def log_px_given_z(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return Independent(Normal(z @ self.W.T + self.b, SIGMA), 1).log_prob(x.reshape(x.shape[0], -1))

    def log_importance_weights(self, x: torch.Tensor, k: int) -> torch.Tensor:
        q = self.encode(x)
        z = q.sample((k,))  # [k, B, d]
        return self.log_px_given_z(x, z) + self.prior(x.shape[0]).log_prob(z) - q.log_prob(z)

    def elbo_terms(self, x: torch.Tensor) -> ElboTerms:
        q = self.encode(x)
        z = q.rsample()
        return ElboTerms(self.log_px_given_z(x, z), kl_divergence(q.base_dist, self.prior(x.shape[0]).base_dist))


def sample_x(model: LinearGaussian, n: int, seed: int = 1) -> torch.Tensor:
    """n draws from the model's own marginal, shaped as images [n, 1, 1, D_X]."""
    torch.manual_seed(seed)
    with torch.no_grad():
        return model.marginal().sample((n,)).reshape(n, 1, 1, D_X)


def test_linear_gaussian_posterior_is_exact():
    """Sanity check of the test model itself: with the exact posterior, log p(x,z) - log q(z|x) is the
    same number, log p(x), for every z."""
    model = LinearGaussian("exact")
    x = sample_x(model, 4)
    with torch.no_grad():
        logw = model.log_importance_weights(x, 5)
    torch.testing.assert_close(logw, model.exact_log_px(x).expand(5, 4), rtol=0, atol=1e-9)


def test_iw_with_many_samples_converges_to_exact_log_likelihood():
    """With k = 5000 samples from an imperfect q the estimate is within 0.1 nat of the exact log p(x) for
    every x (typically 0.01) and within 0.01 nat on average; with k = 1 it is off by more than 0.1 nat."""
    model = LinearGaussian("imperfect")
    x = sample_x(model, 200)
    exact = model.exact_log_px(x).detach()
    torch.manual_seed(2)
    est = iw_log_likelihood(model, x, k=5000, chunk=1000).double()
    assert est.shape == (200,)
    err = est - exact
    assert err.abs().max() < 0.1, err.abs().max()
    assert err.mean().abs() < 0.01, err.mean()
    est1 = iw_log_likelihood(model, x, k=1).double()
    assert (exact - est1).mean() > 0.1  # a single sample is a loose bound: the tolerance above means something


@pytest.mark.parametrize("q", ["imperfect", "prior"])
def test_iw_is_a_bound_that_tightens_with_k(q):
    """Averaged over many x, L_1 < L_10 < L_1000 ≤ log p(x): each estimate is a lower bound in expectation
    and more samples tighten it (Burda et al. 2016, Theorem 1), for a good and for a poor proposal."""
    model = LinearGaussian(q)
    x = sample_x(model, 2000)
    exact = model.exact_log_px(x).detach().mean().item()
    torch.manual_seed(3)
    means = {k: iw_log_likelihood(model, x, k).double().mean().item() for k in (1, 10, 1000)}
    assert means[1] < means[10] < means[1000] <= exact + 2e-3, (means, exact)
    assert exact - means[1] > 5 * (exact - means[1000]), (means, exact)  # the gap closes, not just shrinks


def test_iw_curve_is_nested_and_matches_the_estimator():
    """The nested curve's point at the largest K is the estimator with the same samples; its point at K = 1
    uses the first sample only; on the linear-Gaussian model it tightens towards −log p(x)."""
    model = LinearGaussian("imperfect")
    x = sample_x(model, 500)
    exact = -model.exact_log_px(x).detach().mean().item()
    torch.manual_seed(4)
    curve = iw_curve(model, x, [1, 10, 300], chunk=64)
    torch.manual_seed(4)
    logw = torch.cat([model.log_importance_weights(x, c) for c in (64, 64, 64, 64, 44)])
    assert curve[0] == pytest.approx(-logw[0].float().mean().item(), abs=1e-5)
    assert curve[-1] == pytest.approx(-(torch.logsumexp(logw.float(), 0) - math.log(300)).mean().item(), abs=1e-5)
    assert curve[0] > curve[1] > curve[2] >= exact - 2e-3, (curve, exact)


def test_iw_with_the_exact_posterior_has_zero_variance():
    """With q(z|x) = p(z|x) every weight equals p(x): the estimate is log p(x) for every k, every draw."""
    model = LinearGaussian("exact")
    x = sample_x(model, 50)
    exact = model.exact_log_px(x).detach()
    for k in (1, 2, 10, 333):
        est = iw_log_likelihood(model, x, k, chunk=7).double()
        torch.testing.assert_close(est, exact, rtol=0, atol=1e-4)


class CountingModel(nn.Module):
    """Returns log-weights that are all 0 and records the k of each call."""

    def __init__(self):
        super().__init__()
        self.calls: list[int] = []

    def log_importance_weights(self, x, k):
        self.calls.append(k)
        return torch.zeros(k, x.shape[0])


@pytest.mark.parametrize("k, chunk, calls", [(20, 7, [7, 7, 6]), (5, 100, [5]), (6, 3, [3, 3]), (1, 1, [1])])
def test_iw_draws_exactly_k_samples_in_chunks(k, chunk, calls):
    """The k samples are drawn in chunks of at most `chunk`, k in total; equal weights give log 1 = 0,
    which checks the − log k normalisation."""
    model = CountingModel()
    est = iw_log_likelihood(model, torch.zeros(3, 1, 1, 1), k, chunk)
    assert model.calls == calls
    torch.testing.assert_close(est, torch.zeros(3))


def test_evaluate_on_the_linear_model_matches_the_exact_likelihood():
    """evaluate() with iw_samples on the linear-Gaussian model: NLL within 0.01 nat of the exact mean
    −log p(x) (several batches, chunked sampling with a ragged last chunk); the ELBO is below log p(x); KL
    per dimension and bits/dim are consistent."""
    model = LinearGaussian("imperfect")
    x = sample_x(model, 300)
    data = ImageSet("linear", "test", x, None, "none")
    exact_nll = -model.exact_log_px(x).detach().mean().item()
    out = evaluate(model, data, iw_samples=1000, batch_size=100, iw_batch=700)  # chunks of 7, 142×7 + 6
    assert abs(out["nll_nats"] - exact_nll) < 0.01, (out["nll_nats"], exact_nll)
    assert out["elbo_nats"] < -out["nll_nats"]
    assert -out["elbo_nats"] - exact_nll > 0.1  # the imperfect q leaves a real gap the NLL closes
    assert len(out["kl_per_dim"]) == D_Z
    assert sum(out["kl_per_dim"]) == pytest.approx(out["kl_nats"], rel=1e-6)
    assert out["elbo_nats"] == pytest.approx(-out["recon_nats"] - out["kl_nats"], rel=1e-6)
    assert out["bits_per_dim"] == pytest.approx(out["nll_nats"] / (D_X * math.log(2)), rel=1e-6)
    without_iw = evaluate(model, data)
    assert "nll_nats" not in without_iw
    assert without_iw["bits_per_dim"] == pytest.approx(-without_iw["elbo_nats"] / (D_X * math.log(2)))


def test_evaluate_is_repeatable_and_restores_training_mode():
    """Same seed, same numbers (evaluation seeds itself); the model's train/eval mode is left as found."""
    model = LinearGaussian("imperfect")
    data = ImageSet("linear", "test", sample_x(model, 100), None, "none")
    model.train()
    a = evaluate(model, data, iw_samples=10, seed=4)
    torch.manual_seed(123)  # whatever the global state, evaluate() reseeds
    b = evaluate(model, data, iw_samples=10, seed=4)
    assert a == b
    assert model.training


def test_per_image_values_are_those_the_means_average():
    """With per_image, evaluate() returns every image's ELBO and NLL (for paired comparisons): the ELBO of
    each image as the model computes it with the same seed, means equal to the reported means, and the scalar
    numbers the same as without per_image."""
    model = LinearGaussian("imperfect")
    data = ImageSet("linear", "test", sample_x(model, 50), None, "none")
    out = evaluate(model, data, iw_samples=20, batch_size=50, seed=3, per_image=True)
    assert len(out["elbo_nats_per_image"]) == len(out["nll_nats_per_image"]) == 50
    assert sum(out["nll_nats_per_image"]) / 50 == pytest.approx(out["nll_nats"], rel=1e-9)
    assert sum(out["elbo_nats_per_image"]) / 50 == pytest.approx(out["elbo_nats"], rel=1e-9)
    assert {k: v for k, v in out.items() if "per_image" not in k} == evaluate(model, data, iw_samples=20,
                                                                                 batch_size=50, seed=3)
    with torch.random.fork_rng():
        torch.manual_seed(3)
        elbo = model.elbo_terms(data.x).elbo
    assert out["elbo_nats_per_image"] == pytest.approx(elbo.tolist(), rel=1e-9)


@pytest.mark.parametrize("training", [True, False])
def test_latent_means_restores_training_mode(tiny_images, training):
    """latent_means() computes in eval mode (batch norm with running statistics) and leaves the caller's
    mode as it found it."""
    from c2f.models import VAE, VAEConfig

    torch.manual_seed(0)
    vae = VAE(VAEConfig(latent_dim=3, hidden=(16,), batch_norm=True)).train(training)
    means = latent_means(vae, tiny_images, batch_size=5)
    assert means.shape == (64, 3) and vae.training is training
    vae.eval()
    torch.testing.assert_close(means, vae.latent_means(tiny_images.fixed_binarization(0).x))  # eval-mode means


# --- active units and summaries --------------------------------------------------------------------------


def test_active_units_counts_dimensions_whose_mean_varies():
    """Two dimensions with variance ≫ 0.01 across the data and three nearly constant ones: 2 active."""
    g = torch.Generator().manual_seed(0)
    n = 1000
    means = torch.cat([torch.randn(n, 2, generator=g) * torch.tensor([1.0, 0.3]),
                       0.7 + 0.001 * torch.randn(n, 3, generator=g)], dim=1)
    count, variances = active_units(means)
    assert count == 2
    assert variances.shape == (5,)
    assert variances[0] == pytest.approx(1.0, rel=0.15) and variances[1] == pytest.approx(0.09, rel=0.15)
    assert (variances[2:] < 1e-5).all()
    assert active_units(means, threshold=0.5)[0] == 1


def test_summarise_gives_mean_sample_std_and_worst():
    """Mean and unbiased std of each numeric metric over runs, and the worst run of metrics with a
    direction (NLL: the largest; accuracy: the smallest; active units: none); lists are skipped; a single
    run gives the mean alone, since it has no spread."""
    runs = [{"nll": 90.0, "au": 10, "accuracy": 0.9, "kl_per_dim": [1.0]},
            {"nll": 92.0, "au": 12, "accuracy": 0.7, "kl_per_dim": [2.0]},
            {"nll": 94.0, "au": 14, "accuracy": 0.8, "kl_per_dim": [3.0]}]
    s = summarise(runs)
    assert set(s) == {"nll", "nll_std", "nll_worst", "au", "au_std", "accuracy", "accuracy_std", "accuracy_worst"}
    assert s["nll"] == pytest.approx(92.0) and s["nll_std"] == pytest.approx(2.0) and s["nll_worst"] == 94.0
    assert s["au"] == pytest.approx(12.0) and s["au_std"] == pytest.approx(2.0)
    assert s["accuracy_worst"] == pytest.approx(0.7)
    assert summarise(runs[:1]) == {"nll": 90.0, "au": 10.0, "accuracy": 0.9}


@pytest.mark.parametrize("name, better", [
    ("test_nll_nats", False), ("test_elbo_nats@3", True), ("test_elbo_bits_per_dim", False),
    ("recon_class_accuracy_stage1", True), ("prefix_recon_nats@2", False), ("test_log_likelihood_nats", True),
    ("dvae_st_marginal100/mnist/exact/test_accuracy", True), ("test_l1_step_2", False), ("box_iou", True),
    ("success_rate", True), ("kl_layer_1", None), ("active_units", None)])
def test_the_last_word_with_a_direction_says_which_way_is_better(name, better):
    """The quantity a name measures is its last word with a direction, so an accuracy of reconstructions is
    higher-is-better; words are whole (``marginal100`` holds no ``l1``)."""
    assert higher_is_better(name) is better


def test_describe_formats_mean_std_and_worst():
    s = summarise([{"test_nll_nats": 90.0}, {"test_nll_nats": 94.0}])
    assert describe(s, "test_nll_nats", digits=1, unit=" nats") == "92.0 ± 2.8 nats (worst 94.0 nats)"
    assert describe({"acc": 0.5}, "acc", digits=1, scale=100, unit=" %") == "50.0 %"


class _Decides:
    """A fake model whose 4 × 4 image is decided by z (the sign of z_0 and z_1: 4 classes) or by the noise (the
    top-left uniform, 4 bins), and a fake classifier that reads the class back from the image's top row."""

    def __init__(self, by: str, latent_dim: int = 2):
        self.by, self.device = by, torch.device("cpu")
        self.cfg = type("cfg", (), {"latent_dim": latent_dim, "image_shape": (1, 4, 4)})()

    def generate(self, z, noise):
        c = (2 * (z[:, 0] > 0) + (z[:, 1] > 0)) if self.by == "z" else (noise[:, 0, 0, 0] * 4).long()
        return nn.functional.one_hot(c.long(), 4).float()[:, None, None, :].expand(-1, 1, 4, -1)

    def sample(self, n, noise):
        return self.generate(None, noise)

    @staticmethod
    def predict(x):
        return x[:, 0, 0].argmax(-1)


def test_class_kept_tells_what_decides_the_class():
    by_z = class_kept(_Decides("z"), _Decides("z"), n_groups=50, group=4, seed=1)
    assert by_z["class_kept_fixed_z"] == 1.0 and by_z["class_kept_fixed_noise"] < 0.4  # chance: 1/4
    by_noise = class_kept(_Decides("noise"), _Decides("noise"), n_groups=50, group=4, seed=1)
    assert by_noise["class_kept_fixed_noise"] == 1.0 and by_noise["class_kept_fixed_z"] < 0.4
    # no latent: independent samples for both measures, both near the chance level of 4 equally likely classes
    none = class_kept(_Decides("noise", latent_dim=0), _Decides("noise"), n_groups=200, group=4, seed=1)
    assert abs(none["class_kept_fixed_z"] - 0.25) < 0.06 and abs(none["class_kept_fixed_noise"] - 0.25) < 0.06
    # the chance level: Σ p_c² of the sampled classes, 1/4 for 4 equally likely classes, 1 for a single class
    assert abs(none["class_chance"] - 0.25) < 0.02 and abs(by_z["class_chance"] - 0.25) < 0.04

    class One(_Decides):
        def generate(self, z, noise):
            return super().generate(z.abs(), noise)  # z_0, z_1 > 0: always class 3

    assert class_kept(One("z"), One("z"), n_groups=5, group=3)["class_chance"] == 1.0
