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
from c2f.objectives import CoarseToFine, CodeOrder, kl_parts
from c2f.synthesis import (FAMILIES, accuracy_area, accuracy_at, decoded_measures, fano_accuracy_bound,
                           fano_excess, prefix_measures, probe, rate_to_accuracy, shared_budget)

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
    assert all(0.0 <= c["probe_accuracy"] <= 1.0 and 0.0 <= c["control_accuracy"] <= 1.0 for c in curve)
    assert [c["features"] for c in curve] == [1, 2, 4, 5]


def test_the_chapter_offers_exactly_these_families():
    assert declared_choices("08_synthesis")["families"] == list(FAMILIES)


# --- the headline measure: decoded from a sample of the prefix --------------------------------------------

@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_decodes_a_sampled_prefix_by_the_one_rule(family):
    """CodeOrder.sample: images in [0, 1] of the data's shape for every prefix g = 0..G; with no code (g = 0)
    the decoded image does not depend on the input image (everything drawn from the prior; that it does with
    the code is checked on a trained model below)."""
    torch.manual_seed(0)
    model = tiny(family).eval()
    xa, xb = torch.bernoulli(torch.rand(2, 5, 1, 28, 28))
    with torch.no_grad():
        order = model.code_order(model.elbo_terms(xa).kl_dims.mean(0).tolist())
        assert order.sample is not None and order.pixel_by_pixel == (family == "pixelvae")
        for g in range(len(order) + 1):
            log_px, img = order.sample(xa, g, True)
            assert log_px.shape == (5,) and torch.isfinite(log_px).all()
            assert img.shape == (5, 1, 28, 28) and 0 <= img.min() and img.max() <= 1
            assert order.sample(xa, g, False)[1] is None
        code = order.code_sample(xa)  # a draw of the whole code, in the columns of the posterior means
        assert code.shape == model.latent_means(xa).shape and not torch.equal(code, order.code_sample(xa))

        def decoded(x, g):
            torch.manual_seed(1)
            return order.sample(x, g, True)[1]
        assert torch.equal(decoded(xa, 0), decoded(xb, 0))


def test_fano_bound_against_its_equation():
    """1/K with no information, 1 from log K nats on, and in between the accuracy a at which
    h(1 − a) + (1 − a) log(K − 1) = log K − I, computed here independently; rising with the rate."""
    import math
    assert fano_accuracy_bound(0.0) == pytest.approx(0.1)
    assert fano_accuracy_bound(math.log(10)) == 1.0 and fano_accuracy_bound(5.0) == 1.0
    for rate in (0.05, 0.5, 1.0, 2.0):
        e = 1 - fano_accuracy_bound(rate)
        h = -e * math.log(e) - (1 - e) * math.log(1 - e)
        assert h + e * math.log(9) == pytest.approx(math.log(10) - rate, abs=1e-9)
    bounds = [fano_accuracy_bound(r) for r in (0.0, 0.1, 0.5, 1.0, 2.0, 2.3)]
    assert bounds == sorted(bounds)
    assert fano_accuracy_bound(0.15) == pytest.approx(0.30, abs=0.02)  # the PixelVAE example


def test_fano_excess_flags_a_leak():
    """An accuracy of 1 at a rate of 0.1 nats on 500 images breaks the bound; the chance level at rate 0 does
    not, nor an accuracy a binomial error above the bound."""
    assert fano_excess(1.0, 0.1, 500) > 0
    assert fano_excess(0.1, 0.0, 500) < 0
    b = fano_accuracy_bound(1.0)
    assert fano_excess(b + (b * (1 - b) / 500) ** 0.5, 1.0, 500) < 0


def test_decoded_measure_of_a_trained_model_respects_fano(make_images):
    """A VAE and a classifier trained for seconds on ten prototypes: the decoded measure starts at no code
    (rate 0) near chance, its rates add up to the model's KL, and no point exceeds the Fano bound of its rate."""
    from c2f.models.classifier import Classifier
    from c2f.train import TrainConfig, fit
    torch.manual_seed(0)
    images = make_images(1300, prototypes=10, flip=0.03)
    data = ImageSet("toy", "train", images.x[:1000], images.y[:1000], "static")
    test = ImageSet("toy", "test", images.x[1000:], images.y[1000:], "static")
    clf = Classifier()
    fit(clf, data, TrainConfig(epochs=1, batch_size=50, lr=2e-3))
    assert (clf.predict(test.x) == test.y).float().mean() > 0.95
    model = VAE(VAEConfig(arch="mlp", latent_dim=4, hidden=(64,)))
    fit(model, data, TrainConfig(epochs=10, batch_size=50, lr=3e-3))
    metrics = evaluate(model, test, seed=0)
    order = model.code_order(metrics["kl_per_dim"])
    curve = decoded_measures(model, order, metrics["kl_per_dim"], test, clf, draws=2)
    assert len(curve) == len(order) + 1 and curve[0]["kl_nats"] == 0.0
    assert curve[-1]["kl_nats"] == pytest.approx(metrics["kl_nats"], rel=1e-5)
    assert curve[0]["decoded_accuracy"] < 0.25
    assert curve[-1]["decoded_accuracy"] > 0.5  # the measure reads the class when the code carries it
    for c in curve:
        assert fano_excess(c["decoded_accuracy"], c["kl_nats"], c["images"] * 2) <= 0, c
    # and the check catches a decoder that leaks the image past its code: the true image "decoded" at rate 0
    leak = CodeOrder("leak", ["all"], [[0]], [[0]], lambda x, g: x.new_zeros(len(x)),
                     sample=lambda x, g, image: (x.new_zeros(len(x)), x if g else torch.rand_like(x)))
    cheat = decoded_measures(torch.nn.Linear(1, 1), leak, [0.0], test, clf, draws=1)
    assert cheat[1]["kl_nats"] == 0.0 and fano_excess(cheat[1]["decoded_accuracy"], 0.0, cheat[1]["images"]) > 0


def test_accuracy_rate_summaries_interpolate_in_log_rate():
    """Between two points the accuracy is linear in log(1 + R), not a step; beyond the last point it holds;
    the area is a mean accuracy; the rate to an accuracy inverts the interpolation."""
    import math
    curve = [{"kl_nats": 0.0, "decoded_accuracy": 0.1}, {"kl_nats": math.e - 1, "decoded_accuracy": 0.5},
             {"kl_nats": math.e ** 2 - 1, "decoded_accuracy": 0.9}]
    assert accuracy_at(curve, 0.0) == pytest.approx(0.1)
    assert accuracy_at(curve, math.exp(0.5) - 1) == pytest.approx(0.3)
    assert accuracy_at(curve, math.exp(1.5) - 1) == pytest.approx(0.7)
    assert accuracy_at(curve, 1000.0) == pytest.approx(0.9)
    assert accuracy_area(curve, math.e - 1, points=2001) == pytest.approx(0.3, abs=1e-3)  # mean of a line 0.1..0.5
    assert rate_to_accuracy(curve, 0.3) == pytest.approx(math.exp(0.5) - 1)
    assert rate_to_accuracy(curve, 0.05) == 0.0 and rate_to_accuracy(curve, 0.95) is None


def test_a_stage_wise_model_shares_the_budget(make_images):
    """G stages of one pass over ⌈N·E/G⌉ images take the steps of E epochs over N images (up to rounding)."""
    import math
    from c2f.train import TrainConfig
    train = make_images(7000)
    cfg = TrainConfig(epochs=2, batch_size=128, kl_warmup_epochs=1.0)
    assert shared_budget(cfg, train, 1) == (cfg, None)
    stage_cfg, images = shared_budget(cfg, train, 10)
    assert stage_cfg.epochs == 1 and stage_cfg.kl_warmup_epochs == 0.5 and len(images) == 1400
    steps = 10 * math.ceil(len(images) / 128)
    assert abs(steps - 2 * math.ceil(7000 / 128)) <= 10  # 110 and 110
