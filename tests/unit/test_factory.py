"""The chapters' model factories: every family of chapters 04 and 08 is built from the chapter's declared
parameters, with the sizes the parameters give, and an unknown family is named in the error."""

from __future__ import annotations

import pytest

from c2f.book.chapters import declared_parameters
from c2f.models import DVAE, MSVAE, PixelVAE
from c2f.models.factory import HIERARCHY_KINDS, SYNTHESIS_FAMILIES, hierarchy_model, synthesis_model
from c2f.synthesis import FAMILIES


def test_the_factories_know_the_chapters_families():
    assert SYNTHESIS_FAMILIES == tuple(FAMILIES)
    assert set(declared_parameters("08_synthesis")["families"]) <= set(SYNTHESIS_FAMILIES)
    assert set(declared_parameters("04_hierarchical")["models"]) == set(HIERARCHY_KINDS)


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
