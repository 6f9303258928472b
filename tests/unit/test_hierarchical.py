"""Chapter 04's models: HVAE, Markov HVAE, LVAE, VLAE, SVAE and MSVAE. Shapes and per-layer KL keys,
gradients reaching every layer, training lowering the loss, importance weights consistent with the ELBO,
the precision-weighted posterior against a hand computation, batch norm not leaking between examples."""

from __future__ import annotations

import math

import pytest
import torch

from c2f.evaluate import evaluate, iw_log_likelihood, layer_report
from c2f.models import (HVAE, MSVAE, SVAE, VLAE, HierarchicalConfig, LadderVAE, MarkovHVAE, MSVAEConfig, SVAEConfig,
                        VLAEConfig, make_hierarchical)
from c2f.models.layered import precision_weighted, resample_layer, split_layers, traverse_layer
from c2f.train import TrainConfig, fit

B = 6
DIMS, HIDDEN = (4, 3, 2), (24, 16, 8)


def build(name: str, batch_norm: bool = True):
    torch.manual_seed(0)
    if name in ("hvae", "markov_hvae", "lvae"):
        return make_hierarchical(name, HierarchicalConfig(latent_dims=DIMS, hidden=HIDDEN, batch_norm=batch_norm))
    if name == "vlae":
        return VLAE(VLAEConfig(latent_dims=DIMS, hidden=HIDDEN, batch_norm=batch_norm))
    if name == "svae":
        return SVAE(SVAEConfig(latent_dims=DIMS, hidden=(24, 16), batch_norm=batch_norm))
    return MSVAE(MSVAEConfig(latent_dim=5, hidden=(24, 16), channels=4, res_blocks=1, batch_norm=batch_norm))


MODELS = ["hvae", "markov_hvae", "lvae", "vlae", "svae", "msvae"]


def batch(n: int = B, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.full((n, 1, 28, 28), 0.3), generator=g)


@pytest.mark.parametrize("name", MODELS)
def test_shapes_and_terms(name):
    m, x = build(name), batch()
    t = m.elbo_terms(x)
    D = sum(m.layer_sizes)
    assert t.log_px.shape == t.kl.shape == t.elbo.shape == (B,)
    assert t.kl_dims.shape == (B, D)
    torch.testing.assert_close(t.elbo, t.log_px - t.kl)
    torch.testing.assert_close(t.kl, t.kl_dims.sum(-1))
    assert m.log_importance_weights(x, 3).shape == (3, B)
    assert m.latent_means(x).shape == (B, D)
    assert [p.shape[-1] for p in m.posterior_means(x)] == list(m.layer_sizes)
    m.eval()  # the image helpers run on trained models, batch norm with its running statistics
    assert m.reconstruct(x).shape == x.shape and m.sample(4).shape == (4, 1, 28, 28)
    for layer in range(1, len(m.layer_sizes) + 1):
        r = resample_layer(m, x, layer)
        assert r.shape == x.shape and ((r >= 0) & (r <= 1)).all()
    assert traverse_layer(m, x[:1], 1, 0, torch.linspace(-2, 2, 5)).shape == (5, 1, 28, 28)
    with pytest.raises(ValueError):
        resample_layer(m, x, len(m.layer_sizes) + 1)


@pytest.mark.parametrize("name", MODELS)
def test_loss_logs_every_layer_and_gradients_reach_every_parameter(name):
    m, x = build(name), batch()
    loss, scalars = m.loss(x, kl_weight=0.5)
    for l in range(1, len(m.layer_sizes) + 1):
        assert f"kl_{l}" in scalars and f"au_{l}" in scalars
    loss.backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient reaches {missing}"


@pytest.mark.parametrize("name", MODELS)
def test_training_lowers_the_loss(name, make_images):
    data = make_images(64, prototypes=3)
    m = build(name)
    m.eval()
    before = -m.elbo_terms(data.x).elbo.mean().item()
    fit(m, data, TrainConfig(epochs=15, batch_size=32, lr=3e-3, seed=0))
    after = -m.elbo_terms(data.x).elbo.mean().item()
    assert after < before - 50, (before, after)


@pytest.mark.parametrize("name", MODELS)
def test_importance_weights_agree_with_the_elbo(name):
    """E[log w] with one sample is the ELBO (closed-form or sampled KL alike), and the K-sample bound is above
    it; checked on one image with many draws in eval mode."""
    m, x = build(name), batch(1)
    m.eval()
    torch.manual_seed(1)
    with torch.no_grad():
        xs = x.expand(4000, -1, -1, -1)
        elbo = m.elbo_terms(xs).elbo
        logw = m.log_importance_weights(x, 4000)[:, 0]
        stderr = math.sqrt((elbo.var() + logw.var()).item() / 4000)
        assert abs(elbo.mean().item() - logw.mean().item()) < 4 * stderr + 1e-3
        iw = iw_log_likelihood(m, x, 500).item()
    assert iw > elbo.mean().item()


def test_precision_weighting_by_hand():
    mu_hat, var_hat = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 4.0])
    mu_p, var_p = torch.tensor([3.0, 0.0]), torch.tensor([2.0, 1.0])
    mean, logvar = precision_weighted((mu_hat, var_hat.log()), (mu_p, var_p.log()))
    # first unit: precisions 2 and 0.5 -> variance 1/2.5 = 0.4, mean (1*2 + 3*0.5)/2.5 = 1.4
    # second unit: precisions 0.25 and 1 -> variance 0.8, mean (-2*0.25 + 0)/1.25 = -0.4
    torch.testing.assert_close(logvar.exp(), torch.tensor([0.4, 0.8]))
    torch.testing.assert_close(mean, torch.tensor([1.4, -0.4]))


def test_lvae_posterior_is_the_precision_weighted_combination():
    """Inside the LVAE the lower layers' posteriors are the precision-weighted product of the bottom-up
    estimate and the top-down prior; the top layer's is the bottom-up estimate alone."""
    m, x = build("lvae"), batch()
    m.eval()
    zs, qs, ps, _, _ = m._pass(x)
    d = x.flatten(1)
    estimates = []
    for up, head in zip(m.up, m.q_heads):
        d = up(d)
        estimates.append(head.params(d))
    torch.testing.assert_close(qs[-1][0], estimates[-1][0])
    for l in range(len(DIMS) - 1):
        prec = estimates[l][1].neg().exp() + ps[l][1].neg().exp()
        torch.testing.assert_close(qs[l][1].exp(), 1 / prec)
        expected = (estimates[l][0] * estimates[l][1].neg().exp() + ps[l][0] * ps[l][1].neg().exp()) / prec
        torch.testing.assert_close(qs[l][0], expected)


def test_markov_decoder_sees_only_the_lowest_layer():
    """In the Markov HVAE (and the LVAE) x depends on the upper layers only through z_1; in the HVAE
    the decoder also sees the layers above."""
    x = batch()
    for name, depends in (("markov_hvae", False), ("lvae", False), ("hvae", True)):
        m = build(name)
        m.eval()
        zs = [torch.randn(B, d) for d in DIMS]
        out = m.top_down(B, lambda l, p: zs[l], x.device)[2]
        zs[-1] = zs[-1] + 3.0
        changed = m.top_down(B, lambda l, p: zs[l], x.device)[2]
        assert (not torch.allclose(out, changed)) == depends, name


@pytest.mark.parametrize("name", ["lvae", "vlae"])
def test_batch_norm_does_not_leak_between_examples_in_eval_mode(name):
    m, x = build(name), batch()
    m.loss(x)  # one training-mode pass updates the running statistics
    m.eval()
    alone = m.latent_means(x[:1])
    together = m.latent_means(torch.cat([x[:1], 1 - x[1:]]))[:1]
    torch.testing.assert_close(alone, together)


def test_layer_report_has_per_layer_keys(make_images):
    data = make_images(40)
    m = build("lvae")
    r = layer_report(m, data, iw_samples=3)
    for key in ("elbo_nats", "nll_nats", "kl_layer_1", "kl_layer_3", "active_units_layer_1", "active_units_layer_3"):
        assert key in r
    assert r["nll_nats"] <= -r["elbo_nats"] + 1.0
    assert math.isclose(sum(r[f"kl_layer_{l}"] for l in (1, 2, 3)), r["kl_nats"], rel_tol=1e-4)
    assert len(split_layers(torch.zeros(2, 9), DIMS)) == 3
    kl_dims = torch.tensor(evaluate(m, data)["kl_per_dim"])
    assert r["kl_active_units"] == int((kl_dims > 0.1).sum()) == sum(r[f"kl_active_units_layer_{l}"] for l in (1, 2, 3))


def test_svae_steps_and_msvae_stages():
    x = batch()
    svae, msvae = build("svae"), build("msvae")
    steps = svae.step_images(x)
    assert len(steps) == len(DIMS) and all(s.shape == x.shape for s in steps)
    torch.testing.assert_close(steps[-1], svae.reconstruct(x))  # the reported model is the final image
    coarse, sharp = msvae.stage_images(x)
    assert coarse.shape == sharp.shape == x.shape
    torch.testing.assert_close(coarse, msvae.reconstruct(x))  # the likelihood model is stage 1
    assert len(msvae.l1_errors(x)) == 2
    _, scalars = msvae.loss(x)
    assert "l1_stage2" in scalars


@pytest.mark.parametrize("bad", [dict(latent_dims=(2, 2), hidden=(8,)), dict(latent_dims=(0, 2), hidden=(8, 8))])
def test_bad_configuration_is_an_error(bad):
    with pytest.raises(ValueError):
        HierarchicalConfig(**bad)
    with pytest.raises(ValueError):
        make_hierarchical("ladder", HierarchicalConfig())
    with pytest.raises(ValueError):
        SVAEConfig(step_weights="middle")
