"""Chapter 06's PixelCNN and PixelVAE: the decoder is autoregressive (the output at pixel i does not depend on
pixels ≥ i, for the whole stack and both ways of conditioning on z), the PixelCNN's likelihood sums to one
over every image of a tiny size, shapes, gradients reaching every parameter, a loss that decreases, the IW
bound above the ELBO, sampling that respects the fixed noise."""

from __future__ import annotations

import itertools

import pytest
import torch

from c2f.evaluate import evaluate, iw_log_likelihood, layer_report
from c2f.models import HierarchicalPixelVAE, HierarchicalPixelVAEConfig, PixelVAE, PixelVAEConfig
from c2f.models.pixelvae import receptive_field_rows
from c2f.train import TrainConfig, fit

SMALL = dict(channels=8, kernel_size=3, up_channels=4, enc_channels=(4, 8), conv_features=16)
VARIANTS = {"pixelcnn": dict(latent_dim=0), "bias": dict(latent_dim=3, conditioning="bias"),
            "upsample": dict(latent_dim=3, conditioning="upsample"),
            "map": dict(latent_dim=3, conditioning="map")}


S = 12  # image side for most tests: 144 sampling steps instead of 784


def build(variant: str, layers: int = 3, image_shape=(1, S, S)) -> PixelVAE:
    torch.manual_seed(0)
    return PixelVAE(PixelVAEConfig(layers=layers, image_shape=image_shape, **SMALL, **VARIANTS[variant]))


def batch(n: int = 4, size: int = S, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.full((n, 1, size, size), 0.3), generator=g)


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("layers", [1, 3])
def test_output_at_pixel_i_ignores_pixels_from_i_on(variant, layers):
    """∂ logit_i / ∂ x_j = 0 for every j ≥ i (raster order), and ≠ 0 for some j < i: no leak, no blind spot
    next to the pixel. Random continuous inputs, so that no gradient vanishes by accident."""
    size = 9
    model = build(variant, layers, image_shape=(1, size, size))
    torch.manual_seed(1)
    x = torch.rand(2, 1, size, size, requires_grad=True)
    z = torch.randn(2, 3)
    cond = None if variant == "pixelcnn" else model.decoder.features(z)
    logits = model.decoder(x, cond)
    for i in range(size * size):
        r, c = divmod(i, size)
        (grad,) = torch.autograd.grad(logits[0, 0, r, c], x, retain_graph=True)
        flat = grad[0, 0].flatten().abs()
        assert flat[i:].max() == 0, f"pixel {i} depends on pixels ≥ {i}"
        assert grad[1].abs().max() == 0, "examples of a batch must not mix"
        if c > 0:
            assert flat[i - 1] > 0, f"pixel {i} does not see its left neighbour"
        if r > 0:
            assert flat[i - size] > 0, f"pixel {i} does not see the pixel above"


def test_receptive_field_grows_with_layers():
    """The rows a pixel sees, counted from the gradient, match receptive_field_rows."""
    size = 16
    for layers in (1, 2, 3):
        model = build("pixelcnn", layers, image_shape=(1, size, size))
        x = torch.rand(1, 1, size, size, requires_grad=True)
        model.decoder(x)[0, 0, size - 1, size // 2].backward()
        rows = (x.grad[0, 0].abs().sum(1) > 0).nonzero().flatten()
        assert size - 1 - rows.min().item() == receptive_field_rows(layers, 3)


def test_pixelcnn_likelihood_normalises():
    """On 2 × 2 binary images the PixelCNN is a distribution: the 16 probabilities sum to 1."""
    torch.manual_seed(0)
    model = PixelVAE(PixelVAEConfig(latent_dim=0, layers=2, channels=8, kernel_size=3, image_shape=(1, 2, 2)))
    for p in model.parameters():  # large random weights, far from the uniform distribution
        torch.nn.init.normal_(p, std=0.5)
    images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4))).view(16, 1, 2, 2)
    with torch.no_grad():
        log_p = model.elbo_terms(images).log_px
    assert torch.logsumexp(log_p.double(), 0).exp().item() == pytest.approx(1.0, abs=1e-5)
    assert log_p.std() > 0.1  # not trivially uniform


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_shapes_and_gradients_reach_every_parameter(variant):
    model = build(variant)
    x = batch()
    t = model.elbo_terms(x)
    d = model.cfg.latent_dim
    assert t.log_px.shape == t.kl.shape == t.elbo.shape == (4,)
    assert t.kl_dims.shape == (4, d)
    assert model.log_importance_weights(x, 5).shape == (5, 4)
    assert model.latent_means(x).shape == (4, d)
    loss, scalars = model.loss(x)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, missing
    assert set(scalars) == {"elbo", "recon", "kl"}


def test_conv_decoder_without_layers():
    """layers = 0 with upsampling is a factorised decoder; without upsampling it is refused."""
    model = build("upsample", layers=0)
    assert model.elbo_terms(batch()).elbo.shape == (4,)
    with pytest.raises(ValueError):
        build("bias", layers=0)
    with pytest.raises(ValueError):
        PixelVAE(PixelVAEConfig(conditioning="concat"))


def test_pixelcnn_has_no_kl_and_exact_iw():
    model = build("pixelcnn")
    x = batch()
    t = model.elbo_terms(x)
    assert torch.all(t.kl == 0) and torch.allclose(t.elbo, t.log_px)
    assert torch.allclose(iw_log_likelihood(model, x, 7), t.log_px, atol=1e-4)


@pytest.mark.parametrize("variant", ["bias", "upsample"])
def test_iw_bound_above_elbo(variant):
    model = build(variant)
    x = batch(8)
    torch.manual_seed(0)
    elbo = torch.stack([model.elbo_terms(x).elbo for _ in range(20)]).mean()
    iw = iw_log_likelihood(model, x, 200).mean()
    assert iw >= elbo


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_loss_decreases(variant, make_images):
    data = make_images(64, seed=3)
    model = build(variant, layers=2, image_shape=(1, 28, 28))
    before = model.loss(data.x)[0].item()
    fit(model, data, TrainConfig(epochs=6, batch_size=16, lr=3e-3, kl_warmup_epochs=2, seed=0))
    assert model.loss(data.x)[0].item() < before - 10


@pytest.mark.parametrize("variant", ["bias", "upsample", "map"])
def test_sampling_fixed_noise_and_batch(variant):
    model = build(variant)
    z = torch.randn(3, 3)
    u = torch.rand(3, 1, S, S)
    a, b = model.generate(z, noise=u), model.generate(z, noise=u)
    assert a.shape == (3, 1, S, S) and torch.equal(a, b)
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    # drawing a batch at once equals drawing each image alone
    assert torch.equal(model.generate(z[1:2], noise=u[1:2]), a[1:2])
    # the drawn image is where the model's own conditionals put it: p(x_i = 1) > u_i exactly at the ones
    with torch.no_grad():
        p = torch.sigmoid(model.decoder(a, model.decoder.features(z)))
    assert torch.equal((u < p).float(), a)
    assert model.sample(2).shape == (2, 1, S, S)
    assert build("pixelcnn").sample(2).shape == (2, 1, S, S)


def test_hierarchical_pixelvae():
    torch.manual_seed(0)
    cfg = HierarchicalPixelVAEConfig(latent_dims=(4, 2), hidden=16, decoder=PixelVAEConfig(layers=2, image_shape=(1, S, S), **SMALL))
    model = HierarchicalPixelVAE(cfg)
    assert model.cfg.decoder.latent_dim == 4
    x = batch(8)
    t = model.elbo_terms(x)
    assert t.kl_dims.shape == (8, 6)
    loss, scalars = model.loss(x)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert {"kl_1", "kl_2"} <= set(scalars)
    torch.manual_seed(0)
    elbo = torch.stack([model.elbo_terms(x).elbo for _ in range(20)]).mean()
    assert iw_log_likelihood(model, x, 200).mean() >= elbo
    from c2f.data import ImageSet

    report = layer_report(model, ImageSet("t", "test", x, None, "static"), iw_samples=3)
    assert {"kl_layer_1", "kl_layer_2", "active_units_layer_1", "active_units_layer_2"} <= set(report)
    for level in ("z2", "z1", "pixels"):
        assert model.resample(x[:2], level).shape == (2, 1, S, S)
    with pytest.raises(ValueError):
        model.resample(x[:2], "z3")
    with pytest.raises(ValueError):
        HierarchicalPixelVAEConfig(latent_dims=(4,))


def test_evaluate_runs_on_pixelcnn(make_images):
    data = make_images(10, shape=(1, S, S))
    out = evaluate(build("pixelcnn"), data, iw_samples=3)
    assert out["kl_nats"] == 0 and out["nll_nats"] == pytest.approx(-out["elbo_nats"], abs=1e-3)


@pytest.mark.parametrize("variant", ["pixelcnn", "bias", "upsample", "map"])
def test_a_rows_logits_need_exactly_the_receptive_field_rows_above_it(variant):
    """What sampling's cut relies on: row r's logits computed from rows r − R … r alone (R =
    receptive_field_rows) equal those of the whole image, and one row fewer changes them."""
    model = build(variant)
    torch.manual_seed(1)
    x = batch(2)
    cond = model.decoder.features(torch.randn(2, 3)) if model.cfg.latent_dim else None
    rf = receptive_field_rows(model.cfg.layers, model.cfg.kernel_size)
    with torch.no_grad():
        full = model.decoder(x, cond)
        for r in range(rf, S):
            cut = model.decoder(x[:, :, r - rf:r + 1], cond, r - rf)[:, :, -1]
            assert torch.allclose(cut, full[:, :, r], rtol=0, atol=1e-7)
        short = max((model.decoder(x[:, :, r - rf + 1:r + 1], cond, r - rf + 1)[:, :, -1] - full[:, :, r]).abs().max()
                    for r in range(rf, S))
    assert short > 1e-6  # at initialisation the farthest row moves a logit by about 1e-5
