"""The VAE and its building blocks: shapes, gradients, and that training lowers the loss."""

from __future__ import annotations

import math

import pytest
import torch

from c2f.nn import ConvDecoder, ConvEncoder, mlp, pixel_likelihood
from c2f.models import VAE, VAEConfig
from c2f.train import TrainConfig, fit

B, D, K = 5, 3, 7


def small_config(arch: str, **kw) -> VAEConfig:
    """A VAE small enough for a unit test (the shapes do not depend on the widths)."""
    base = dict(arch=arch, latent_dim=D, hidden=(32, 16), channels=(4, 8), conv_features=16)
    return VAEConfig(**{**base, **kw})


def binary_batch(n: int = B, shape=(1, 28, 28), seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.full((n, *shape), 0.3), generator=g)


CONFIGS = {
    "mlp": small_config("mlp"),
    "mlp_batch_norm": small_config("mlp", batch_norm=True),
    "conv": small_config("conv"),
    "conv_batch_norm": small_config("conv", batch_norm=True),
    "conv_32x32": small_config("conv", image_shape=(1, 32, 32)),
    "mlp_continuous_bernoulli": small_config("mlp", likelihood="continuous_bernoulli"),
}


@pytest.fixture(params=list(CONFIGS), ids=list(CONFIGS))
def vae(request) -> VAE:
    torch.manual_seed(0)
    return VAE(CONFIGS[request.param])


# --- shapes ----------------------------------------------------------------------------------------------


def test_vae_shapes(vae):
    """encode / decode / elbo_terms / log_importance_weights / latent_means / reconstruct / sample have the
    documented shapes, for every architecture."""
    shape = vae.cfg.image_shape
    x = binary_batch(shape=shape)
    q = vae.encode(x)
    assert q.batch_shape == (B,) and q.event_shape == (D,)
    assert q.mean.shape == (B, D)

    px = vae.decode(q.rsample())
    assert px.batch_shape == (B,) and px.event_shape == shape
    assert px.log_prob(x).shape == (B,)
    px_k = vae.decode(q.sample((K,)))  # extra leading sample dimension
    assert px_k.batch_shape == (K, B) and px_k.event_shape == shape

    t = vae.elbo_terms(x)
    assert t.log_px.shape == (B,) and t.kl.shape == (B,) and t.elbo.shape == (B,)
    assert t.kl_dims.shape == (B, D)
    torch.testing.assert_close(t.kl, t.kl_dims.sum(-1))
    torch.testing.assert_close(t.elbo, t.log_px - t.kl)
    assert (t.kl_dims >= 0).all()

    assert vae.log_importance_weights(x, K).shape == (K, B)
    assert vae.log_importance_weights(x, 1).shape == (1, B)
    assert vae.latent_means(x).shape == (B, D)

    vae.eval()
    recon = vae.reconstruct(x)
    assert recon.shape == x.shape and recon.min() >= 0 and recon.max() <= 1
    samples = vae.sample(4)
    assert samples.shape == (4, *shape) and samples.min() >= 0 and samples.max() <= 1


def test_vae_loss_is_negative_mean_elbo(vae):
    """loss(x) with kl_weight=1 and no free bits is minus the batch-mean ELBO (same posterior sample)."""
    x = binary_batch(shape=vae.cfg.image_shape)
    vae.eval()  # batch norm in eval mode: both calls see the same network
    torch.manual_seed(3)
    loss, scalars = vae.loss(x)
    torch.manual_seed(3)
    elbo = vae.elbo_terms(x).elbo.mean()
    torch.testing.assert_close(loss, -elbo)
    torch.testing.assert_close(scalars["elbo"], elbo)
    assert loss.shape == ()


@pytest.mark.parametrize("size", [28, 32, 30, 27])
def test_conv_encoder_decoder_round_trip(size):
    """ConvEncoder -> ConvDecoder gives back the image shape (also for sizes not divisible by 4)."""
    enc = ConvEncoder((1, size, size), channels=(4, 8), out_features=16)
    dec = ConvDecoder(16, (1, size, size), channels=(8, 4))
    x = torch.rand(3, 1, size, size)
    h = enc(x)
    assert h.shape == (3, 16)
    assert dec(h).shape == (3, 1, size, size)


def test_conv_round_trip_three_channels():
    """Colour images: the decoder ends in image_shape[0] channels."""
    enc = ConvEncoder((3, 32, 32), channels=(4, 8, 8), out_features=10)
    dec = ConvDecoder(10, (3, 32, 32), channels=(8, 8, 4))
    assert dec(enc(torch.rand(2, 3, 32, 32))).shape == (2, 3, 32, 32)


def test_mlp_layers_and_batch_norm():
    """mlp() puts (batch norm and) the activation after every layer but the last, unless asked."""
    net = mlp([6, 5, 4, 3], batch_norm=True)
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert net(torch.randn(8, 6)).shape == (8, 3)
    with_last = mlp([6, 3], activation="tanh", last_activation=True)
    assert [type(m).__name__ for m in with_last] == ["Linear", "Tanh"]


def test_unknown_arch_and_likelihood_raise():
    with pytest.raises(ValueError, match="arch"):
        VAE(small_config("transformer"))
    with pytest.raises(ValueError, match="gaussian"):
        pixel_likelihood(torch.zeros(1, 1, 2, 2), "gaussian")


def test_log_importance_weights_average_to_the_elbo():
    """E_q[log w] = E_q[log p(x|z)] - KL(q||p): the mean of many log-weights matches the ELBO computed with
    the closed-form KL (a sign or shape error in either would break this)."""
    torch.manual_seed(0)
    vae = VAE(small_config("mlp")).eval()
    x = binary_batch(4)
    torch.manual_seed(1)
    logw = vae.log_importance_weights(x, 4000).double()
    with torch.no_grad():
        q = vae.encode(x)
        recon = vae.decode(q.sample((4000,))).log_prob(x).double().mean(0)
        kl = vae.elbo_terms(x).kl.double()
    stderr = logw.std(0) / math.sqrt(4000)
    assert (logw.mean(0) - (recon - kl)).abs().max() < 5 * stderr.max() + 0.05


# --- gradients -------------------------------------------------------------------------------------------


def biases_before_batch_norm(model: torch.nn.Module) -> set[str]:
    """Names of the biases of layers that feed straight into a batch norm: batch norm subtracts the batch
    mean, so these biases cannot change the output and their exact gradient is zero."""
    names = set()
    for prefix, module in model.named_modules():
        if isinstance(module, torch.nn.Sequential):
            children = list(module.named_children())
            for (name, layer), (_, after) in zip(children, children[1:]):
                if isinstance(after, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)) and layer.bias is not None:
                    names.add(f"{prefix}.{name}.bias" if prefix else f"{name}.bias")
    return names


def test_every_parameter_gets_a_finite_nonzero_gradient(vae):
    """After loss(x).backward(), every parameter (encoder, decoder, heads, batch norm) has a finite grad
    that is not identically zero; the biases in front of a batch norm (zero gradient in exact arithmetic)
    get only rounding noise."""
    x = binary_batch(16, shape=vae.cfg.image_shape, seed=1)
    if vae.cfg.likelihood == "continuous_bernoulli":
        x = torch.rand_like(x)
    loss, _ = vae.loss(x)
    loss.backward()
    shadowed = biases_before_batch_norm(vae)
    assert bool(shadowed) == vae.cfg.batch_norm
    for name, p in vae.named_parameters():
        assert p.grad is not None, f"{name} has no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
        if name in shadowed:
            assert p.grad.abs().max() < 1e-3, f"{name} feeds a batch norm but has gradient {p.grad}"
        else:
            assert p.grad.abs().max() > 1e-4, f"{name} has a (near) zero gradient"


# --- training lowers the loss ----------------------------------------------------------------------------


def test_fit_lowers_the_loss_on_a_tiny_batch(tiny_images):
    """100 Adam steps (one per epoch) on 64 fixed binary images: the training loss and the ELBO of the
    same images improve by far more than noise."""
    from c2f.evaluate import evaluate

    torch.manual_seed(0)
    model = VAE(VAEConfig(arch="mlp", latent_dim=4, hidden=(64,)))
    before = evaluate(model, tiny_images)["elbo_nats"]
    history = fit(model, tiny_images, TrainConfig(epochs=100, batch_size=64, lr=3e-3, seed=0))
    losses = history["epochs"]["loss"]
    assert len(losses) == 100 and history["epochs"]["epoch"] == list(range(1, 101))
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.5 * first, (first, last)
    after = evaluate(model, tiny_images)["elbo_nats"]
    assert after > before + 100, (before, after)
    assert not model.training  # fit leaves the model in eval mode
