"""The model interface and the objective helpers: every family follows the protocols of
:mod:`c2f.objectives` and returns its ELBO terms as an ElboTerms; free bits, KL warm-up; the Gaussian head."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
import torch
from torch import nn

import c2f.models
from c2f.models import (AIR, DVAE, HVAE, MSVAE, PCAAE, SVAE, VAE, VLAE, AIRConfig, Classifier, ClassifierConfig,
                        ConvDRAW, ConvDRAWConfig, DVAEConfig, HierarchicalConfig, HierarchicalPixelVAE,
                        HierarchicalPixelVAEConfig, LadderVAE, MarkovHVAE, MSVAEConfig, PCAAEConfig, PixelVAE,
                        PixelVAEConfig, ProgressiveConfig, SVAEConfig, VAEConfig, VLAEConfig)
from c2f.models.progressive import VARIANTS, make_variant
from c2f.nn import GaussianHead, ImageConfig
from c2f.objectives import (ElboTerms, LatentVariableModel, MultiStep, Progressive, StageWise, Supervised, Trainable,
                            kl_penalty, kl_weight)

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
    "convdraw": lambda: ConvDRAW(ConvDRAWConfig(iterations=3, hidden=4, latent_channels=1, read_channels=4)),
    "pixelvae": lambda: PixelVAE(PixelVAEConfig(latent_dim=3, layers=1, channels=4, enc_channels=(4, 4),
                                                conv_features=8)),
    "pixelcnn": lambda: PixelVAE(PixelVAEConfig(latent_dim=0, layers=1, channels=4)),
    "hierarchical_pixelvae": lambda: HierarchicalPixelVAE(HierarchicalPixelVAEConfig(
        latent_dims=(3, 2), hidden=8, decoder=PixelVAEConfig(layers=1, channels=4, enc_channels=(4, 4),
                                                             conv_features=8))),
    **{f"air_{what}": (lambda what=what: AIR(AIRConfig(
        image_shape=(1, 28, 28), max_steps=2, window=8, what=what, z_what=3, num_classes=3, features=16,
        hidden=16, what_hidden=16, baseline_hidden=8)))
       for what in ("gaussian", "prototypes")},
}
# the models that are trainable but have no likelihood
OTHER_MODELS = {"pcaae": lambda: PCAAE(PCAAEConfig(latents=3, hidden=(8,))),
                "classifier": lambda: Classifier(ClassifierConfig(channels=(4, 4), features=8))}
# posterior means that are not one per KL term: the D-VAE's class probabilities and transformation, AIR's
# count probabilities and every step's where and what, Conv-DRAW's units (its KL terms are its iterations)
MEANS_NOT_PER_KL_TERM = ("dvae", "air", "convdraw")


def batch(n: int = B, shape=(1, 28, 28)) -> torch.Tensor:
    return torch.bernoulli(torch.full((n, *shape), 0.3), generator=torch.Generator().manual_seed(0))


def model_classes() -> set[type]:
    """Every class defined in a module of c2f.models that is a model: a torch module with a ``loss``."""
    found = set()
    for info in pkgutil.iter_modules(c2f.models.__path__):
        module = importlib.import_module(f"c2f.models.{info.name}")
        found |= {c for c in vars(module).values() if inspect.isclass(c) and issubclass(c, nn.Module)
                  and c.__module__ == module.__name__ and hasattr(c, "loss")}
    return found


def test_every_model_class_is_listed_in_the_interface_test():
    """A model class added to c2f.models without a factory here fails this test: every class with a loss is
    built by FAMILIES or OTHER_MODELS, or is a base class of one that is (its methods are tested there)."""
    built = {type(f()) for f in [*FAMILIES.values(), *OTHER_MODELS.values()]}
    covered = {base for cls in built for base in cls.__mro__}
    unlisted = sorted(c.__qualname__ for c in model_classes() - covered)
    assert not unlisted, f"model classes missing from the interface test: {unlisted}"


def test_every_model_config_is_an_image_config():
    """The configs share ImageConfig: image_shape (C, H, W) and the pixel count."""
    for factory in [*FAMILIES.values(), OTHER_MODELS["pcaae"]]:
        model = factory()
        assert isinstance(model.cfg, ImageConfig), type(model.cfg).__name__
        assert model.cfg.pixels == 28 * 28


def test_air_free_bits_penalise_the_kl_terms_as_kl_penalty_does():
    """With the exact count estimator the loss is −E_q(n) log p(x | n objects) + Σ_j max(λ, E_batch KL_j) over
    the KL terms of elbo_terms; with λ above every term only the likelihood is left to train (the same
    posterior sample for both losses: the same seed)."""
    model, x = FAMILIES["air_gaussian"](), batch()
    torch.manual_seed(1)
    plain, scalars = model.loss(x)
    torch.manual_seed(1)
    clamped, _ = model.loss(x, free_bits=100.0)
    torch.manual_seed(1)
    terms = model.elbo_terms(x)
    torch.testing.assert_close(scalars["recon"], -terms.log_px.mean())
    torch.testing.assert_close(scalars["kl"], terms.kl.mean())
    torch.testing.assert_close(plain, -terms.elbo.mean())
    n_terms = terms.kl_dims.shape[1]
    torch.testing.assert_close(clamped, -terms.log_px.mean() + 100.0 * n_terms)
    clamped.backward()
    grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad()
    torch.manual_seed(1)
    (-model.elbo_terms(x).log_px.mean()).backward()
    for g, p in zip(grads, [p for p in model.parameters() if p.grad is not None]):
        torch.testing.assert_close(g, p.grad)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_follows_the_latent_variable_model_protocol(name):
    """isinstance against the runtime-checkable protocol, and the contract itself: the loss is a scalar with
    0-dim tensor scalars, elbo_terms an ElboTerms of the documented shapes, the importance weights [k, B]
    and the posterior means [B, D] with D the number of KL terms (the D-VAE: its K class probabilities,
    then the 6 transformation means, against 1 or 2 KL terms)."""
    torch.manual_seed(0)
    model = FAMILIES[name]()
    x = batch(shape=model.cfg.image_shape)
    assert isinstance(model, Trainable) and isinstance(model, LatentVariableModel)
    loss, scalars = model.loss(x, kl_weight=0.5, free_bits=0.1)
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert all(torch.is_tensor(v) and v.dim() == 0 for v in scalars.values()), scalars
    assert {"elbo", "recon", "kl"} <= set(scalars), sorted(scalars)
    t = model.elbo_terms(x)
    assert isinstance(t, ElboTerms)
    assert t.log_px.shape == t.kl.shape == t.elbo.shape == (B,) and t.kl_dims.shape[0] == B
    torch.testing.assert_close(t.elbo, t.log_px - t.kl_dims.sum(-1))
    assert model.log_importance_weights(x, 3).shape == (3, B)
    means = model.latent_means(x)
    assert means.shape[0] == B
    if not name.startswith(MEANS_NOT_PER_KL_TERM):
        assert means.shape[1] == t.kl_dims.shape[1]


PROGRESSIVE = ["convdraw", *(f"progressive_{v}" for v in sorted(VARIANTS))]


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_prefix_models_and_only_they_are_progressive(name):
    """The groups' and iterations' models follow the Progressive protocol; the rest do not."""
    assert isinstance(FAMILIES[name](), Progressive) == (name in PROGRESSIVE)


@pytest.mark.parametrize("name", PROGRESSIVE)
def test_a_prefix_is_the_model_that_stops_after_it(name):
    """groups=g: the KL of every group after g is 0, kl_groups has one column per group, the importance
    weights are [k, B]; the full prefix is the default."""
    torch.manual_seed(0)
    model, x = FAMILIES[name](), batch()
    g_all = model.default_groups
    assert 1 <= g_all <= model.num_groups
    torch.manual_seed(1)
    full = model.elbo_terms(x)
    torch.manual_seed(1)
    torch.testing.assert_close(model.elbo_terms(x, groups=g_all).elbo, full.elbo)
    t = model.elbo_terms(x, groups=1)
    kl = model.kl_groups(t.kl_dims)
    assert kl.shape == (B, model.num_groups)
    assert (kl[:, 1:] == 0).all() and (kl[:, 0] > 0).all()
    assert model.log_importance_weights(x, 2, groups=1).shape == (2, B)


def test_stagewise_and_multistep_models_say_so():
    """PCA-AE and the multiple-VAE model are StageWise (num_stages, set_stage); the single model with a step
    per group is MultiStep; the plain VAE is neither. PCA-AE is Trainable but has no likelihood."""
    pca = OTHER_MODELS["pcaae"]()
    multiple = make_variant("multiple_combined", ProgressiveConfig(groups=4, group_size=1, hidden=(8,)))
    single = make_variant("single_steps", ProgressiveConfig(groups=4, group_size=1, hidden=(8,)))
    vae = FAMILIES["vae_mlp"]()
    assert isinstance(pca, StageWise) and pca.num_stages == 3 and isinstance(pca, Trainable)
    assert not isinstance(pca, LatentVariableModel)
    assert isinstance(multiple, StageWise) and multiple.num_stages == 4
    assert isinstance(single, MultiStep) and single.steps_per_batch == 4
    assert not isinstance(vae, StageWise) and not isinstance(vae, MultiStep)
    classifier = OTHER_MODELS["classifier"]()
    assert isinstance(classifier, Supervised) and classifier.uses_labels
    assert not isinstance(classifier, LatentVariableModel)


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
