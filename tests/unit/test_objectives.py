"""The model interface and the objective helpers: every family follows the protocols of
:mod:`c2f.objectives` and returns its ELBO terms as an ElboTerms; free bits, KL warm-up; the Gaussian head."""

from __future__ import annotations

import pytest
import torch

from c2f.models import (DVAE, HVAE, MSVAE, PCAAE, SVAE, VAE, VLAE, DVAEConfig, HierarchicalConfig, LadderVAE,
                        MarkovHVAE, MSVAEConfig, PCAAEConfig, ProgressiveConfig, SVAEConfig, VAEConfig, VLAEConfig)
from c2f.models.progressive import VARIANTS, make_variant
from c2f.nn import GaussianHead
from c2f.objectives import (ElboTerms, LatentVariableModel, MultiStep, StageWise, Trainable, kl_penalty,
                            kl_weight)

B = 4
H = HierarchicalConfig(latent_dims=(3, 2), hidden=(16, 8))
FAMILIES = {
    "vae_mlp": lambda: VAE(VAEConfig(latent_dim=3, hidden=(16,))),
    "vae_conv": lambda: VAE(VAEConfig(arch="conv", latent_dim=3, channels=(4, 8), conv_features=16)),
    "hvae": lambda: HVAE(H), "markov_hvae": lambda: MarkovHVAE(H), "lvae": lambda: LadderVAE(H),
    "vlae": lambda: VLAE(VLAEConfig(latent_dims=(3, 2), hidden=(16, 8))),
    "svae": lambda: SVAE(SVAEConfig(latent_dims=(3, 2), hidden=(16, 8))),
    "msvae": lambda: MSVAE(MSVAEConfig(latent_dim=3, hidden=(16,), channels=4, res_blocks=1)),
    "dvae": lambda: DVAE(DVAEConfig(num_classes=3, hidden=(16,), decoder_hidden=(16,), prototype_init="random")),
    "dvae_st": lambda: DVAE(DVAEConfig(num_classes=3, transform=True, hidden=(16,), decoder_hidden=(16,),
                                       prototype_init="random")),
    **{f"progressive_{v}": (lambda v=v: make_variant(v, ProgressiveConfig(groups=3, group_size=1, hidden=(16,),
                                                                            merge_hidden=8)))
       for v in sorted(VARIANTS)},
}


def batch(n: int = B) -> torch.Tensor:
    return torch.bernoulli(torch.full((n, 1, 28, 28), 0.3), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_follows_the_latent_variable_model_protocol(name):
    """isinstance against the runtime-checkable protocol, and the contract itself: the loss is a scalar with
    0-dim tensor scalars, elbo_terms an ElboTerms of the documented shapes, the importance weights [k, B]
    and the posterior means [B, D] with D the number of KL terms (the D-VAE: its K class probabilities,
    then the 6 transformation means, against 1 or 2 KL terms)."""
    torch.manual_seed(0)
    model, x = FAMILIES[name](), batch()
    assert isinstance(model, Trainable) and isinstance(model, LatentVariableModel)
    loss, scalars = model.loss(x, kl_weight=0.5, free_bits=0.1)
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert all(torch.is_tensor(v) and v.dim() == 0 for v in scalars.values()), scalars
    t = model.elbo_terms(x)
    assert isinstance(t, ElboTerms)
    assert t.log_px.shape == t.kl.shape == t.elbo.shape == (B,) and t.kl_dims.shape[0] == B
    torch.testing.assert_close(t.elbo, t.log_px - t.kl_dims.sum(-1))
    assert model.log_importance_weights(x, 3).shape == (3, B)
    means = model.latent_means(x)
    assert means.shape[0] == B
    if not name.startswith("dvae"):
        assert means.shape[1] == t.kl_dims.shape[1]


def test_stagewise_and_multistep_models_say_so():
    """PCA-AE and the multiple-VAE model are StageWise (num_stages, set_stage); the single model with a step
    per group is MultiStep; the plain VAE is neither. PCA-AE is Trainable but has no likelihood."""
    pca = PCAAE(PCAAEConfig(latents=3, hidden=(8,)))
    multiple = make_variant("multiple_combined", ProgressiveConfig(groups=4, group_size=1, hidden=(8,)))
    single = make_variant("single_steps", ProgressiveConfig(groups=4, group_size=1, hidden=(8,)))
    vae = FAMILIES["vae_mlp"]()
    assert isinstance(pca, StageWise) and pca.num_stages == 3 and isinstance(pca, Trainable)
    assert not isinstance(pca, LatentVariableModel)
    assert isinstance(multiple, StageWise) and multiple.num_stages == 4
    assert isinstance(single, MultiStep) and single.steps_per_batch == 4
    assert not isinstance(vae, StageWise) and not isinstance(vae, MultiStep)


def test_models_do_not_import_the_training_loop():
    """The model families and the estimators depend on c2f.objectives, not on c2f.train."""
    import subprocess
    import sys

    code = ("import sys, c2f.models, c2f.estimators, c2f.evaluate; "
            "print('c2f.train' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# --- objective helpers ------------------------------------------------------------------------------------


def test_kl_penalty_without_free_bits_is_the_batch_mean_of_the_total_kl():
    kl = torch.tensor([[1.0, 0.0, 3.0], [3.0, 0.5, 1.0]])
    assert kl_penalty(kl).item() == pytest.approx(kl.sum(1).mean().item())
    assert kl_penalty(kl, 0.0).item() == pytest.approx(4.25)


def test_kl_penalty_free_bits_clamps_per_unit_batch_means():
    """Σ_j max(λ, mean_batch KL_j): units are clamped after averaging over the batch, not per example."""
    kl = torch.tensor([[1.0, 0.0, 3.0], [3.0, 0.5, 1.0]])  # unit means 2, 0.25, 2
    assert kl_penalty(kl, 1.0).item() == pytest.approx(2 + 1 + 2)
    assert kl_penalty(kl, 0.2).item() == pytest.approx(2 + 0.25 + 2)
    kl2 = torch.tensor([[0.0], [2.0]])  # batch mean 1.0 -> 1.5; clamping per example would give 1.75
    assert kl_penalty(kl2, 1.5).item() == pytest.approx(1.5)


def test_kl_penalty_free_bits_blocks_the_gradient_of_units_below_the_threshold():
    kl = torch.tensor([[0.1, 2.0], [0.3, 4.0]], requires_grad=True)
    kl_penalty(kl, 1.0).backward()
    torch.testing.assert_close(kl.grad, torch.tensor([[0.0, 0.5], [0.0, 0.5]]))


def test_kl_weight_is_a_linear_warmup():
    assert kl_weight(0, 10) == 0.0
    assert kl_weight(5, 10) == pytest.approx(0.5)
    assert kl_weight(10, 10) == 1.0
    assert kl_weight(25, 10) == 1.0
    assert kl_weight(0, 0) == 1.0 and kl_weight(7, 0) == 1.0


# --- the Gaussian head ----------------------------------------------------------------------------------


def test_gaussian_head_gives_the_distribution_and_its_parameters():
    """forward(h) is N(mean, exp(logvar)) with (mean, logvar) = params(h), over the last dimension."""
    torch.manual_seed(0)
    head, h = GaussianHead(5, 3), torch.randn(4, 5)
    mean, logvar = head.params(h)
    q = head(h)
    assert mean.shape == logvar.shape == (4, 3) and q.event_shape == (3,) and q.batch_shape == (4,)
    torch.testing.assert_close(q.mean, mean)
    torch.testing.assert_close(q.variance, logvar.exp())
    raw_mean, raw_logvar = head.linear(h).chunk(2, -1)
    torch.testing.assert_close(logvar, raw_logvar)  # unbounded by default


def test_gaussian_head_bounds_the_log_variance_softly():
    """With logvar_bound b the log-variance is b·tanh(v/b): about v near 0, never beyond ±b."""
    head = GaussianHead(1, 1, logvar_bound=10.0)
    with torch.no_grad():
        head.linear.weight.zero_()
        head.linear.bias.zero_()
        head.linear.weight[1, 0] = 1.0  # log-variance = h
    _, logvar = head.params(torch.tensor([[0.01], [1e4], [-1e4]]))
    assert logvar[0].item() == pytest.approx(0.01, rel=1e-4)
    assert logvar[1].item() == pytest.approx(10.0) and logvar[2].item() == pytest.approx(-10.0)
    assert torch.isfinite(head(torch.tensor([[1e4]])).log_prob(torch.zeros(1, 1))).all()
