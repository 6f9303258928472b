"""The chapters' model factories: every family of chapters 01 to 08 is built from the
chapter's parameters, with the sizes the parameters give, and an unknown family is named in the error."""

from __future__ import annotations

import pytest

from c2f.book.chapters import declared_parameters, resolve_parameters
from c2f.models import DVAE, MSVAE, PixelVAE, ProgressiveConfig, VAEConfig
from c2f.models.factory import (AIR_KINDS, HIERARCHY_KINDS, PIXEL_KINDS, SYNTHESIS_FAMILIES, VAE_ARCHS, air_model,
                                convdraw_model, dvae_model, hierarchy_model, pixelvae_model, progressive_model,
                                synthesis_model, vae_model)
from c2f.models.progressive import VARIANTS, make_variant
from c2f.synthesis import FAMILIES


def test_the_factories_know_the_chapters_families():
    assert SYNTHESIS_FAMILIES == tuple(FAMILIES)
    assert set(declared_parameters("08_synthesis")["families"]) <= set(SYNTHESIS_FAMILIES)
    assert set(declared_parameters("04_hierarchical")["models"]) == set(HIERARCHY_KINDS)
    assert set(declared_parameters("02_progressive")["models"]) <= set(VARIANTS)


@pytest.mark.parametrize("profile", ["default", "gpu"])
def test_vae_models_follow_the_chapter_parameters(profile):
    p = resolve_parameters("01_vae", profile)
    mlp, conv = vae_model("mlp", p), vae_model("conv", p)
    assert (mlp.cfg.arch, mlp.cfg.latent_dim, mlp.cfg.hidden) == ("mlp", p["latent_dim"], tuple(p["mlp_hidden"]))
    assert (conv.cfg.arch, conv.cfg.channels, conv.cfg.conv_features) == ("conv", tuple(p["conv_channels"]),
                                                                         p["conv_features"])
    assert vae_model("mlp", p, latent_dim=2).cfg.latent_dim == 2, "an override replaces a field"


def test_sizes_a_chapter_does_not_declare_keep_the_configs_defaults():
    vae = vae_model("conv", {"latent_dim": 7})  # chapter 03's baselines
    assert (vae.cfg.latent_dim, vae.cfg.channels, vae.cfg.conv_features) == (7, VAEConfig.channels,
                                                                            VAEConfig.conv_features)
    assert progressive_model("rnn", {}).cfg == make_variant("rnn", ProgressiveConfig()).cfg  # chapter 03's rnn


@pytest.mark.parametrize("profile", ["default", "gpu"])
def test_convdraw_follows_chapter_03_and_08_parameters(profile):
    p = resolve_parameters("03_convdraw", profile)
    cfg = convdraw_model(p).cfg
    assert (cfg.iterations, cfg.hidden, cfg.latent_channels, cfg.read_channels, cfg.kernel) == tuple(
        p[k] for k in ("iterations", "hidden", "latent_channels", "read_channels", "kernel"))
    assert convdraw_model(p, likelihood="discretized_logistic").cfg.likelihood == "discretized_logistic"
    q = resolve_parameters("08_synthesis", profile)
    cfg = synthesis_model("convdraw", q).cfg
    assert (cfg.iterations, cfg.hidden, cfg.latent_channels, cfg.read_channels, cfg.kernel) == tuple(
        q[k] for k in ("iterations", "convdraw_hidden", "convdraw_latent_channels", "convdraw_read_channels",
                       "convdraw_kernel"))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_progressive_models_follow_the_chapter_parameters(variant):
    p = resolve_parameters("02_progressive", "smoke")
    model = progressive_model(variant, p)
    assert (model.num_groups, model.cfg.group_size, model.cfg.hidden) == (p["groups"], p["group_size"],
                                                                          tuple(p["hidden"]))
    assert progressive_model(variant, p, likelihood="continuous_bernoulli").cfg.likelihood == "continuous_bernoulli"


@pytest.mark.parametrize("family", SYNTHESIS_FAMILIES)
def test_synthesis_models_follow_the_chapter_parameters(family):
    p = declared_parameters("08_synthesis")
    model = synthesis_model(family, p)
    if hasattr(model, "layer_sizes") and family not in ("vae", "pixelvae"):
        assert list(model.layer_sizes) == list(p["latent_dims"]), model.layer_sizes
    if family in ("vae", "pixelvae"):
        assert model.cfg.latent_dim == p["latent_dim" if family == "vae" else "pixel_latent_dim"]
    if family == "convdraw":
        assert model.num_groups == p["iterations"]
    if family in ("multiple", "single", "rnn", "quotient"):
        assert model.num_groups == p["groups"]
        assert list(model.cfg.hidden) == p["multiple_hidden" if family == "multiple" else "progressive_hidden"]
    assert isinstance(model, DVAE) == (family == "dvae_st") and isinstance(model, PixelVAE) == (family == "pixelvae")


@pytest.mark.parametrize("kind", HIERARCHY_KINDS)
def test_hierarchy_models_follow_the_chapter_parameters(kind):
    p = declared_parameters("04_hierarchical")
    model = hierarchy_model(kind, p, batch_norm=False)
    assert sum(model.layer_sizes) == sum(p["latent_dims"])
    assert model.cfg.batch_norm is False and model.cfg.activation == "elu"
    if kind == "msvae":
        assert isinstance(model, MSVAE) and model.cfg.channels == p["msvae_channels"]


def test_an_unknown_family_is_named():
    with pytest.raises(ValueError, match="'nope'"):
        synthesis_model("nope", declared_parameters("08_synthesis"))
    with pytest.raises(ValueError, match="'nope'"):
        hierarchy_model("nope", declared_parameters("04_hierarchical"))
    with pytest.raises(ValueError, match="'nope'"):
        vae_model("nope", declared_parameters("01_vae"))
    assert VAE_ARCHS == ("mlp", "conv")


def test_synthesis_families_stay_in_the_stated_band():
    """Chapter 08 states a band of 0.2–2 M parameters for its default families, and every family lies in it
    (Conv-DRAW widened from its chapter's 52 k)."""
    from c2f.experiment import parameter_count
    p = declared_parameters("08_synthesis")
    sizes = {f: parameter_count(synthesis_model(f, p)) for f in p["families"]}
    assert all(200_000 <= n <= 2_000_000 for n in sizes.values()), sizes


@pytest.mark.parametrize("profile", ["default", "smoke", "gpu"])
def test_dvae_models_follow_the_chapter_parameters(profile):
    p = resolve_parameters("05_discrete", profile)
    plain, st = dvae_model("dvae", p), dvae_model("dvae_st", p, num_classes=12, estimator="relax")
    assert (plain.cfg.transform, st.cfg.transform) == (False, True)
    for model in (plain, st):
        assert (model.cfg.arch, model.cfg.transform_prior_std, model.cfg.marginal_weight, model.cfg.prototype_init) \
            == (p["arch"], p["transform_prior_std"], p["marginal_weight"], p["prototype_init"])
    assert (st.cfg.num_classes, st.cfg.estimator) == (12, "relax"), "an override replaces a field"
    assert hasattr(st, "localiser") and not hasattr(plain, "localiser")
    with pytest.raises(ValueError, match="'nope'"):
        dvae_model("nope", p)


@pytest.mark.parametrize("profile", ["default", "smoke", "full"])
def test_pixelvae_models_follow_the_chapter_parameters(profile):
    """Chapter 06's factory: the PixelCNN has no latent, the PixelVAE the chapter's sizes and conditioning, the
    two-level model the same decoder under z_1; chapter 08's PixelVAE is the same factory at 08's sizes."""
    p = resolve_parameters("06_pixelvae", profile)
    cnn, vae, two = (pixelvae_model(k, p) for k in PIXEL_KINDS)
    assert cnn.cfg.latent_dim == 0 and vae.cfg.latent_dim == p["latent_dim"]
    for cfg in (cnn.cfg, vae.cfg, two.cfg.decoder):
        assert (cfg.layers, cfg.channels, cfg.kernel_size, cfg.conditioning, cfg.enc_channels) == \
            (p["layers"], p["channels"], p["kernel_size"], p["conditioning"], tuple(p["enc_channels"]))
    assert two.cfg.latent_dims == tuple(p["hier_latent_dims"]) and two.cfg.decoder.latent_dim == p["hier_latent_dims"][0]
    assert pixelvae_model("pixelvae", p, layers=1, conditioning="bias").cfg.layers == 1
    p08 = declared_parameters("08_synthesis")
    pv08 = synthesis_model("pixelvae", p08)
    assert (pv08.cfg.latent_dim, pv08.cfg.layers, pv08.cfg.conditioning) == (p08["pixel_latent_dim"], p08["pixel_layers"], "bias")
    with pytest.raises(ValueError, match="'nope'"):
        pixelvae_model("nope", p)


@pytest.mark.parametrize("profile", ["default", "smoke"])
def test_air_models_follow_the_chapter_parameters(profile):
    """Chapter 07's three models: the same scene geometry, presence init and likelihood; only the inference
    input (image or residual) and the what (Gaussian code or prototypes) differ."""

    p = resolve_parameters("07_air", profile)
    models = {k: air_model(k, p) for k in AIR_KINDS}
    for model in models.values():
        c = model.cfg
        assert c.image_shape == (1, p["canvas"], p["canvas"]) and c.max_steps == p["max_steps"]
        assert c.scale_prior == pytest.approx(p["canvas"] / p["digit_size"]) and c.window == p["digit_size"]
        assert (c.pres_init_logit, c.likelihood, c.z_what, c.hidden) == (p["pres_init_logit"], p["likelihood"],
                                                                         p["z_what"], p["hidden"])
    assert [(m.cfg.inference, m.cfg.what) for m in models.values()] == [
        ("air", "gaussian"), ("difference", "gaussian"), ("air", "prototypes")]
    assert models["dair"].cfg.num_classes == p["num_classes"]
    assert air_model("air", p, pres_init_logit=2.0).cfg.pres_init_logit == 2.0, "an override replaces a field"
    with pytest.raises(ValueError, match="dvae"):
        air_model("dvae", p)
