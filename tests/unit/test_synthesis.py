"""Chapter 08's coarse-to-fine measure: the linear probe, every family's code order, prefix measures."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from c2f.book.chapters import declared_choices
from c2f.data import ImageSet
from c2f.evaluate import evaluate
from c2f.models import (DVAE, VAE, VLAE, ConvDRAW, ConvDRAWConfig, DVAEConfig, HierarchicalConfig, PixelVAE,
                        PixelVAEConfig, ProgressiveConfig, VAEConfig, VLAEConfig, make_hierarchical)
from c2f.models.progressive import make_variant
from c2f.objectives import CoarseToFine, kl_parts
from c2f.synthesis import FAMILIES, accuracy_within, prefix_measures, probe

pytest.importorskip("sklearn")


def codes(n, separable, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    noise = torch.randn(n, 16, generator=g)
    return (F.one_hot(y, 16).double() * 5 + noise if separable else noise), y


def test_probe_reads_separable_codes_and_not_random_ones():
    """About 100 % on codes that are the class (plus noise), chance on pure noise, the majority class with
    no code at all."""
    (xa, ya), (xb, yb) = codes(1000, True, 0), codes(1000, True, 1)
    assert probe(xa, ya, xb, yb) > 0.99
    (xa, ya), (xb, yb) = codes(1000, False, 0), codes(1000, False, 1)
    assert probe(xa, ya, xb, yb) < 0.2  # chance is 0.1
    y_train = torch.tensor([3, 3, 3, 1])
    assert probe(torch.zeros(4, 0), y_train, torch.zeros(5, 0), torch.tensor([3, 1, 3, 2, 3])) == pytest.approx(0.6)


def test_units_by_kl_in_doubling_parts():
    parts = kl_parts([0.1, 5.0, 0.0, 2.0, 1.0, 0.3, 0.2, 0.05, 3.0, 0.4])
    assert [len(p) for p in parts] == [1, 1, 2, 4, 2]
    assert parts[0] == [1] and parts[1] == [8] and parts[2] == [3, 4]
    assert sorted(u for p in parts for u in p) == list(range(10))


def tiny(family):
    if family == "vae":
        return VAE(VAEConfig(arch="conv", latent_dim=5, channels=(4, 8), conv_features=16))
    if family == "convdraw":
        return ConvDRAW(ConvDRAWConfig(iterations=3, hidden=4, latent_channels=1, read_channels=4))
    if family in ("multiple", "single", "rnn", "quotient"):
        return make_variant("multiple_combined" if family == "multiple" else family,
                            ProgressiveConfig(groups=3, group_size=2, hidden=(16,)))
    if family in ("hvae", "lvae"):
        return make_hierarchical(family, HierarchicalConfig(latent_dims=(4, 3, 2), hidden=(16, 8, 8), block_layers=1))
    if family == "vlae":
        return VLAE(VLAEConfig(latent_dims=(4, 3, 2), hidden=(16, 8, 8), block_layers=1))
    if family == "pixelvae":
        return PixelVAE(PixelVAEConfig(latent_dim=3, layers=1, channels=4, enc_channels=(4, 4), conv_features=8))
    return DVAE(DVAEConfig(transform=True, hidden=(16,), decoder_hidden=(16,)))


def own_log_px(model, x):
    """log p(x | the whole code at its posterior mean), as each model computes it itself."""
    if isinstance(model, VAE):
        return model.decode(model.encode(x).mean).log_prob(x)
    if isinstance(model, PixelVAE):
        return model.decode(x, model.encode(x).mean).log_prob(x)
    if isinstance(model, ConvDRAW):
        return model.likelihood(list(model.iterate(x, "posterior_mean"))[-1]["canvas"]).log_prob(x)
    if isinstance(model, VLAE):
        return model.decode_layers(model.posterior_means(x)).log_prob(x)
    if isinstance(model, DVAE):
        return model.decode(F.one_hot(model.cluster(x), 10).float(),
                            model.components(model.transform_posterior(x).mean)).log_prob(x)
    if hasattr(model, "top_down"):
        return model.likelihood(model._pass(x, sample=False)[3]).log_prob(x)
    return model.likelihood(model._run(x, model.cfg.groups, sample=False)[2]).log_prob(x)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_has_an_order_whose_whole_code_is_the_model(family):
    """The parts cover every column of the posterior means and of the KL exactly once, and the longest prefix
    gives the likelihood the model itself gives its whole code at the posterior mean."""
    torch.manual_seed(0)
    model = tiny(family).eval()
    assert isinstance(model, CoarseToFine)
    x = torch.bernoulli(torch.rand(6, 1, 28, 28))
    with torch.no_grad():
        kl_dims = model.elbo_terms(x).kl_dims
        order = model.code_order(kl_dims.mean(0).tolist())
        n_means = model.latent_means(x).shape[-1]
        assert sorted(c for p in order.features for c in p) == list(range(n_means))
        assert sorted(c for p in order.kl for c in p) == list(range(kl_dims.shape[-1]))
        assert len(order.labels) == len(order.features) == len(order.kl) >= 2
        assert torch.allclose(order.log_px(x, len(order)), own_log_px(model, x), atol=1e-3)
        assert order.log_px(x, 1).shape == (6,)
        assert order.clusters == hasattr(model, "cluster")  # chapter 08 asks the order, not the class


def test_synthesis_asks_the_models_for_their_order():
    """c2f.synthesis knows no model family: no isinstance, no import of c2f.models (a family is added to chapter
    08 by its model file and one line of the chapter)."""
    import ast
    import inspect

    import c2f.synthesis
    tree = ast.parse(inspect.getsource(c2f.synthesis))
    calls = [n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert "isinstance" not in calls
    assert not [m for m in imported if m.startswith("c2f.models")], imported


def test_prefix_measures_of_a_vae():
    """Rates add up to the model's KL, the whole-code distortion is the reconstruction at the posterior mean,
    and every probe accuracy is a fraction."""
    torch.manual_seed(0)
    model = tiny("vae")
    x = torch.rand(40, 1, 28, 28)
    images = ImageSet("toy", "test", x, torch.arange(40) % 10, "dynamic")
    metrics = evaluate(model, images, seed=0)
    order = model.code_order(metrics["kl_per_dim"])
    curve = prefix_measures(model, order, metrics["kl_per_dim"], images, images)
    assert len(curve) == len(order) == 4  # 5 units: prefixes of 1, 2, 4 and 5
    assert curve[-1]["kl_nats"] == pytest.approx(metrics["kl_nats"], rel=1e-5)
    assert all(a["kl_nats"] <= b["kl_nats"] for a, b in zip(curve, curve[1:]))
    fixed = images.fixed_binarization(0).x
    assert curve[-1]["recon_nats"] == pytest.approx(-own_log_px(model, fixed).mean().item(), rel=1e-5)
    assert all(0.0 <= c["probe_accuracy"] <= 1.0 for c in curve)


def test_accuracy_within_a_budget():
    curve = [{"kl_nats": 1.0, "probe_accuracy": 0.5}, {"kl_nats": 4.0, "probe_accuracy": 0.8},
             {"kl_nats": 9.0, "probe_accuracy": 0.9}]
    assert accuracy_within(curve, 0.5, chance=0.1) == 0.1
    assert accuracy_within(curve, 4.0, chance=0.1) == 0.8
    assert accuracy_within(curve, 100.0, chance=0.1) == 0.9


def test_the_chapter_offers_exactly_these_families():
    assert declared_choices("08_synthesis")["families"] == list(FAMILIES)
