"""Gradient estimators for categorical latents: each one's mean gradient against the exact gradient (the
unbiased ones within a tolerance set by their own variance, CONCRETE's bias shown), the shape pitfalls, the
relaxed prior's temperature, that tuning REBAR/RELAX lowers their variance, and the toy problem."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from c2f.estimators import (ESTIMATORS, NVIL, UNBIASED, Concrete, concrete_bias, conditional_gumbel, exact_gradient,
                            gradient_samples, make_estimator, rebar_variance, run_toy, squared_distance,
                            toy_values)

K = 3
TARGET = torch.tensor([0.34, 0.33, 0.33])
LOGITS = torch.tensor([[0.5, -0.3, 0.1], [1.5, 0.0, -1.0]])


def loss_with_structure(z: torch.Tensor) -> torch.Tensor:
    """A per-sample loss with well separated values per class (and curvature, so that relaxations are
    biased): f(z) = Σ_k w_k z_k + (z_0 − z_2)²."""
    w = torch.tensor([1.0, -0.5, 2.0])
    return (z * w).sum(-1) + (z[..., 0] - z[..., 2]) ** 2


def randomised(name: str, seed: int = 1):
    """An estimator whose learned parts are not at their initial values, so that unbiasedness is tested for
    a non-trivial baseline / temperature / scale / surrogate network."""
    torch.manual_seed(seed)
    est = make_estimator(name, K, hidden=(8,))
    with torch.no_grad():
        for p in est.parameters():
            p.add_(0.5 * torch.randn_like(p))
    return est


@pytest.mark.parametrize("name", UNBIASED)
@pytest.mark.parametrize("f", [squared_distance(TARGET), loss_with_structure], ids=["toy", "structured"])
def test_unbiased_estimators_match_the_exact_gradient(name, f):
    """Mean of n single-sample estimates = exact gradient, within 5 standard errors of that mean."""
    torch.manual_seed(0)
    n = 40_000
    exact = exact_gradient(LOGITS, f)
    grads = gradient_samples(randomised(name), LOGITS, f, n)
    stderr = grads.std(0) / math.sqrt(n)
    assert ((grads.mean(0) - exact).abs() <= 5 * stderr + 1e-6).all(), (name, grads.mean(0), exact, stderr)


def test_exact_estimator_is_deterministic_and_equals_autograd_of_the_expectation():
    f = loss_with_structure
    logits = LOGITS.clone().requires_grad_(True)
    expected = (logits.softmax(-1) * f(torch.eye(K))).sum()
    (reference,) = torch.autograd.grad(expected, logits)
    torch.testing.assert_close(exact_gradient(LOGITS, f), reference)
    grads = gradient_samples(make_estimator("exact", K), LOGITS, f, 5)
    assert grads.var(0).max() == 0


def test_concrete_is_biased_and_its_bias_does_not_average_away():
    """CONCRETE follows the gradient of the relaxed objective: with 40k samples its mean is many standard
    errors away from the exact gradient at moderate and high temperatures; the bias shrinks as the temperature
    falls (while the variance grows)."""
    torch.manual_seed(0)
    f, n = loss_with_structure, 40_000
    exact = exact_gradient(LOGITS, f)
    bias = {}
    for tau in (0.1, 0.5, 2.0):
        grads = gradient_samples(Concrete(K, temperature=tau), LOGITS, f, n)
        stderr = grads.std(0) / math.sqrt(n)
        z = ((grads.mean(0) - exact).abs() / stderr).max()
        assert tau < 0.5 or z > 10, (tau, z)
        bias[tau] = (grads.mean(0) - exact).norm().item()
    assert bias[0.1] < bias[0.5] < bias[2.0], bias


def test_straight_through_concrete_gives_one_hot_values_and_relaxed_gradients():
    torch.manual_seed(0)
    est = make_estimator("concrete", K, straight_through=True)
    logits = LOGITS.clone().requires_grad_(True)
    out = est(logits, loss_with_structure)
    assert set(out.z.unique().tolist()) <= {0.0, 1.0} and (out.z.sum(-1) == 1).all()
    torch.testing.assert_close(out.loss, loss_with_structure(out.z))
    out.objective.sum().backward()
    assert logits.grad.abs().sum() > 0


def test_every_estimator_returns_per_sample_shapes_and_the_loss_as_value():
    """objective and loss are [B]; the objective's value is the per-sample loss (zero-valued extra terms)."""
    torch.manual_seed(0)
    for name in ESTIMATORS:
        est = make_estimator(name, K, context_dim=4)
        logits = torch.randn(6, K, requires_grad=True)
        out = est(logits, loss_with_structure, context=torch.randn(6, 4))
        assert out.objective.shape == (6,) and out.loss.shape == (6,) and out.z.shape == (6, K), name
        torch.testing.assert_close(out.objective.detach(), out.loss)


def test_nvil_baseline_network_output_is_squeezed_not_broadcast():
    """The pitfall: a baseline net returns [B, 1]; against a [B] loss it would broadcast to [B, B]. NVIL
    squeezes it: its gradient equals the hand-written per-sample estimator (f − m − c(x)) ∇ log p(z)."""
    torch.manual_seed(0)
    b = 5
    est = NVIL(K, context_dim=4, hidden=(8,), normalise=False).eval()
    with torch.no_grad():
        for p in est.net.parameters():
            p.add_(torch.randn_like(p))
    x = torch.randn(b, 4)
    assert est.net(x).shape == (b, 1)  # the network itself returns [B, 1] ...
    assert est.baseline(x, None, b).shape == (b,)  # ... the baseline used is [B]
    logits = torch.randn(b, K, requires_grad=True)
    torch.manual_seed(1)
    out = est(logits, loss_with_structure, context=x)
    (grad,) = torch.autograd.grad(out.objective.sum(), logits)
    probs = logits.detach().softmax(-1)
    c = est.baseline(x, None, b).detach()
    manual = (out.loss - est.running_mean[0] - c).unsqueeze(-1) * (out.z - probs)
    torch.testing.assert_close(grad, manual)


def test_nvil_centres_with_the_statistics_of_earlier_batches_only():
    """While training, the learning signal is (f − m_old) / max(1, σ_old): the running mean and variance
    from before this batch, updated with it only afterwards. With one sample of constant loss 7 and
    m_old = 5, σ_old² = 4, the REINFORCE gradient is (7 − 5)/2 ∇ log p(z); a baseline updated first would
    give (7 − 5.2)/… instead, and at the very first step with B = 1 a gradient of exactly zero."""
    logits = torch.zeros(1, K, requires_grad=True)
    est = NVIL(K).train()
    est.running_mean.fill_(5.0)
    est.running_var.fill_(4.0)
    est.initialised.fill_(True)
    out = est(logits, lambda z: torch.full(z.shape[:-1], 7.0))
    (grad,) = torch.autograd.grad(out.objective.sum(), logits)
    torch.testing.assert_close(grad, (7.0 - 5.0) / 2.0 * (out.z - logits.detach().softmax(-1)))
    assert est.running_mean.item() == pytest.approx(0.9 * 5 + 0.1 * 7)  # updated after use

    first = NVIL(K).train()  # the first step, one sample: nothing to centre with yet, so f itself
    out = first(logits, lambda z: torch.full(z.shape[:-1], 3.0))
    (grad,) = torch.autograd.grad(out.objective.sum(), logits)
    assert grad.abs().sum() > 0
    torch.testing.assert_close(grad, 3.0 * (out.z - logits.detach().softmax(-1)))  # σ² = 1 initially


def test_standardised_nvil_baseline_is_in_units_of_the_running_std_and_stays_unbiased():
    """With ``standardised_baseline`` the subtracted baseline is σ_old · net(x), the network regresses onto the
    centred loss divided by σ_old, and the estimator's mean is still the exact gradient."""
    torch.manual_seed(0)
    est = NVIL(K, context_dim=4, hidden=(8,), normalise=False, standardised_baseline=True).train()
    est.running_mean.fill_(1.0)
    est.running_var.fill_(9.0)
    est.initialised.fill_(True)
    with torch.no_grad():
        for p in est.net.parameters():
            p.add_(torch.randn_like(p))
    x = torch.randn(2, 4)
    logits = LOGITS.clone().requires_grad_(True)
    out = est(logits, loss_with_structure, context=x)
    (grad,) = torch.autograd.grad(out.objective.sum(), logits)
    c = 3.0 * est.baseline(x, None, 2).detach()
    manual = (out.loss - 1.0 - c).unsqueeze(-1) * (out.z - logits.detach().softmax(-1))
    torch.testing.assert_close(grad, manual)
    assert out.stats["baseline_mse"] == pytest.approx((((out.loss - 1.0 - c) / 3.0) ** 2).mean().item(), rel=1e-5)

    n = 40_000
    grads = gradient_samples(est.eval(), LOGITS, loss_with_structure, n, context=x)
    stderr = grads.std(0) / math.sqrt(n)
    assert ((grads.mean(0) - exact_gradient(LOGITS, loss_with_structure)).abs() <= 5 * stderr + 1e-6).all()


def test_a_loss_of_shape_b_by_1_is_refused():
    est = make_estimator("reinforce", K)
    with pytest.raises(ValueError, match=r"\[B, 1\]|per-sample"):
        est(torch.randn(4, K), lambda z: loss_with_structure(z).unsqueeze(-1))


def test_relaxed_prior_has_the_configured_temperature_not_the_posterior_one():
    """λ₂ (prior) and λ₁ (posterior) are separate settings, and relaxed_kl uses each where it belongs."""
    est = Concrete(K, temperature=2 / 3, prior_temperature=1.0)
    logits = torch.randn(4, K)
    assert est.prior(4).temperature.item() == pytest.approx(1.0)
    assert est.posterior(logits).temperature.item() == pytest.approx(2 / 3)
    # the relaxed KL of a uniform posterior against the uniform prior is 0 only when the temperatures agree
    torch.manual_seed(0)
    uniform = torch.zeros(20_000, K)
    assert Concrete(K, 1.0, 1.0).relaxed_kl(uniform).mean().abs() < 0.02
    assert Concrete(K, 2 / 3, 1.0).relaxed_kl(uniform).mean() > 0.05


def test_conditional_gumbel_reproduces_the_joint():
    """ã ~ p(a | argmax a = b) with b ~ Cat(p): the pair (b, ã) has the law of (argmax a, a)."""
    torch.manual_seed(0)
    n = 200_000
    log_p = torch.log_softmax(torch.tensor([1.0, 0.0, -0.5]), -1).expand(n, K)
    a = log_p + -torch.log(-torch.log(torch.rand(n, K)))
    b = a.argmax(-1)
    a_tilde = conditional_gumbel(log_p, b)
    assert (a_tilde.argmax(-1) == b).all()
    for k in range(K):
        torch.testing.assert_close(a_tilde[b == k].mean(0), a[b == k].mean(0), atol=0.02, rtol=0)


@pytest.mark.parametrize("name", ["rebar", "relax"])
def test_tuning_lowers_the_gradient_variance(name):
    """REBAR and RELAX train their control variate on the variance objective: on the toy problem the
    variance after 300 tuning steps is below the initial one (RELAX by orders of magnitude)."""
    torch.manual_seed(0)
    f, theta = squared_distance(TARGET), torch.zeros(1, K)
    est = make_estimator(name, K, hidden=(16,))
    before = gradient_samples(est, theta, f, 4000).var(0).sum()
    opt = torch.optim.Adam(est.parameters(), lr=0.01)
    for _ in range(300):
        opt.zero_grad()
        est(theta.repeat(50, 1), f).objective.mean().backward()
        opt.step()
    after = gradient_samples(est, theta, f, 4000).var(0).sum()
    assert after < before, (before, after)
    if name == "relax":
        assert after < before / 100, (before, after)


def test_tuning_does_not_touch_the_encoder_through_the_variance_objective():
    """The variance objective reaches only the estimator's parameters: the encoder's gradient is the
    estimator itself (same with and without the zero-valued variance term)."""
    torch.manual_seed(0)
    est = randomised("relax")
    enc = nn.Linear(2, K)
    x = torch.randn(7, 2)
    torch.manual_seed(3)
    out = est(enc(x), loss_with_structure)
    (with_tuning,) = torch.autograd.grad(out.objective.sum(), enc.weight)
    est.eval()
    torch.manual_seed(3)
    out = est(enc(x), loss_with_structure)
    (without,) = torch.autograd.grad(out.objective.sum(), enc.weight)
    torch.testing.assert_close(with_tuning, without)


def test_toy_reference_values():
    assert toy_values([0.34, 0.33, 0.33]) == pytest.approx({"uniform": 0.222244, "optimum": 0.2178}, abs=1e-6)
    assert toy_values([0.499, 0.501]) == pytest.approx({"uniform": 0.250001, "optimum": 0.249001}, abs=1e-6)


def test_run_toy_shapes_and_progress():
    """The exact estimator reaches the optimum; per-seed arrays have the documented shapes."""
    out = run_toy("exact", TARGET, steps=600, seeds=2, log_every=100, variance_every=300, variance_samples=10)
    assert out["loss"].shape == (2, 7) and out["log_var"].shape == (2, 3)
    assert out["loss"][:, 0] == pytest.approx(0.222244, abs=1e-5)
    assert out["loss"][:, -1] == pytest.approx(0.2178, abs=2e-4)
    nvil = run_toy("nvil", TARGET, steps=100, seeds=3, batch_size=2, log_every=50, variance_every=50,
                   variance_samples=50)
    assert nvil["loss"].shape == (3, 3) and (nvil["log_var"] < 0).all()


def test_concrete_bias_points_away_from_the_optimum_and_rebar_grid_contains_reinforce():
    """At logits that favour the best class, CONCRETE's mean gradient points against the exact one (the
    relaxed objective prefers the uniform policy); REBAR with η = 0 is REINFORCE whatever τ."""
    out = concrete_bias(TARGET, [2.0, 0.0, 0.0], 0.5, samples=4000)
    assert out["cosine"] < -0.9 and out["relative_bias"] > 10 * out["relative_bias_se"]
    assert out["relaxed_loss"] < out["exact_loss"]
    grid = rebar_variance(TARGET, [0.0, 0.0, 0.0], [0.1, 1.0], [0.0, 1.0], samples=500)
    assert grid.shape == (2, 2)
    torch.testing.assert_close(grid[0, 0], grid[1, 0])
    torch.manual_seed(0)
    reinforce = gradient_samples(make_estimator("reinforce", K), torch.zeros(1, K), squared_distance(TARGET), 500)
    assert grid[0, 0].item() == pytest.approx(reinforce.var(0).sum().log().item(), abs=0.3)


def test_run_toy_records_the_learned_temperature_and_scale_of_rebar():
    out = run_toy("rebar", TARGET, steps=40, seeds=2, log_every=20, variance_every=40, variance_samples=10)
    assert out["temperature"].shape == (2, 3) and out["eta"].shape == (2, 3)
    assert out["temperature"][:, 0] == pytest.approx(0.5) and out["eta"][:, 0] == pytest.approx(1.0)
    assert "temperature" not in run_toy("reinforce", TARGET, steps=20, seeds=1, variance_samples=10)
