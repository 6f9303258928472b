"""The model factories of the chapters (01's VAEs, 02's progressive variants, 03's Conv-DRAW, 04's hierarchies, 05's D-VAEs,
06's PixelVAEs, 07's AIRs, 08's families): each builds a family's model from the chapter's parameters
(``run.params``, or :func:`c2f.book.chapters.declared_parameters` for the declared ones), so
the chapter and the GPU sizing (``benchmarks/gpu_sizing.py``) build the same models.

A family's model module is imported only when it is built (through the lazy :mod:`c2f.models`), so a chapter's
record still lists just the model files it used.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

import c2f.models as m

VAE_ARCHS = ("mlp", "conv")
HIERARCHY_KINDS = ("vae", "hvae", "markov_hvae", "lvae", "vlae", "svae", "msvae")
SYNTHESIS_FAMILIES = ("vae", "convdraw", "multiple", "single", "rnn", "quotient", "hvae", "lvae", "vlae", "pixelvae",
                      "dvae_st")


def vae_model(arch: str, p: Mapping[str, Any], **overrides):
    """Chapter 01's VAEs from its parameters `p` (``latent_dim``; ``mlp_hidden`` for the MLP, ``conv_channels``
    and ``conv_features`` for the convolutional one; sizes absent from `p` keep ``VAEConfig``'s defaults, as
    chapter 03's baselines do); `overrides` replace fields of the configuration (the 2-D VAE: ``latent_dim=2``)."""
    if arch not in VAE_ARCHS:
        raise ValueError(f"unknown VAE architecture {arch!r}; choose one of {VAE_ARCHS}")
    names = {"mlp": {"mlp_hidden": "hidden"}, "conv": {"conv_channels": "channels", "conv_features": "conv_features"}}
    sizes = {field: tuple(p[k]) if isinstance(p[k], list) else p[k] for k, field in names[arch].items() if k in p}
    return m.VAE(m.VAEConfig(**{"arch": arch, "latent_dim": p["latent_dim"], **sizes, **overrides}))


def progressive_model(variant: str, p: Mapping[str, Any], **overrides):
    """Chapter 02's variants (:data:`c2f.models.progressive.VARIANTS`) from its parameters `p` (``groups``,
    ``group_size``, ``hidden``; those absent keep ``ProgressiveConfig``'s defaults, as chapter 03's recurrent
    model does); `overrides` replace fields of the configuration (e.g. the likelihood)."""
    from c2f.models.progressive import make_variant
    sizes = {k: tuple(p[k]) if k == "hidden" else p[k] for k in ("groups", "group_size", "hidden") if k in p}
    return make_variant(variant, m.ProgressiveConfig(**{**sizes, **overrides}))


def hierarchy_model(kind: str, p: Mapping[str, Any], *, batch_norm: bool = True, image_shape=(1, 28, 28)):
    """Chapter 04's models from its parameters `p` (``latent_dims``, ``hidden``, ``block_layers``, ``msvae_*``):
    ELU activations and (with `batch_norm`) batch norm in every block. The flat VAE and the one-latent MSVAE get
    as many units as all layers together and the widths of the first two blocks."""
    common = dict(activation="elu", batch_norm=batch_norm, image_shape=image_shape)
    dims, hidden = tuple(p["latent_dims"]), tuple(p["hidden"])
    if kind == "vae":
        return m.VAE(m.VAEConfig(arch="mlp", latent_dim=sum(dims), hidden=hidden[:2], **common))
    if kind in ("hvae", "markov_hvae", "lvae"):
        return m.make_hierarchical(kind, m.HierarchicalConfig(latent_dims=dims, hidden=hidden,
                                                              block_layers=p["block_layers"], **common))
    if kind == "vlae":
        return m.VLAE(m.VLAEConfig(latent_dims=dims, hidden=hidden, block_layers=p["block_layers"], **common))
    if kind == "svae":
        return m.SVAE(m.SVAEConfig(latent_dims=dims, hidden=hidden[:2], **common))
    if kind == "msvae":
        return m.MSVAE(m.MSVAEConfig(latent_dim=sum(dims), hidden=hidden[:2], channels=p["msvae_channels"],
                                     res_blocks=p["msvae_res_blocks"], l1_weight=p["msvae_l1_weight"], **common))
    raise ValueError(f"unknown hierarchy kind {kind!r}; choose one of {HIERARCHY_KINDS}")


def convdraw_model(p: Mapping[str, Any], **overrides):
    """Chapter 03's Conv-DRAW from its parameters `p` (``iterations``, ``hidden``, ``latent_channels``,
    ``read_channels``, ``kernel``); `overrides` replace fields of the configuration (the grey-level codec's
    ``likelihood="discretized_logistic"``)."""
    sizes = {k: p[k] for k in ("iterations", "hidden", "latent_channels", "read_channels", "kernel")}
    return m.ConvDRAW(m.ConvDRAWConfig(**{**sizes, **overrides}))


PIXEL_KINDS = ("pixelcnn", "pixelvae", "pixelvae_2level")


def pixelvae_model(kind: str, p: Mapping[str, Any], **overrides):
    """Chapter 06's models from its parameters `p` (``latent_dim``, ``layers``, ``channels``, ``kernel_size``,
    ``up_channels``, ``enc_channels``, ``conv_features``, ``conditioning``; the two-level model also
    ``hier_latent_dims`` and ``hier_hidden``): the PixelCNN (no latent), the PixelVAE, the two-level PixelVAE.
    `overrides` replace fields of the PixelVAE's (or the two-level model's decoder's) configuration, e.g.
    ``layers`` for the depth sweep or the paper's ``conditioning="bias"``."""
    sizes = {k: p[k] for k in ("latent_dim", "layers", "channels", "kernel_size", "up_channels", "conv_features",
                                "conditioning") if k in p}
    cfg = m.PixelVAEConfig(**{**sizes, "enc_channels": tuple(p["enc_channels"]), **overrides})
    if kind == "pixelcnn":
        return m.PixelVAE(replace(cfg, latent_dim=0))
    if kind == "pixelvae":
        return m.PixelVAE(cfg)
    if kind == "pixelvae_2level":
        return m.HierarchicalPixelVAE(m.HierarchicalPixelVAEConfig(
            latent_dims=tuple(p["hier_latent_dims"]), hidden=p["hier_hidden"], decoder=cfg))
    raise ValueError(f"unknown PixelVAE kind {kind!r}; choose one of {PIXEL_KINDS}")


def synthesis_model(family: str, p: Mapping[str, Any]):
    """Chapter 08's families from its parameters `p`, each at its chapter's architecture (Multiple feeds its
    residual to each small VAE, whose width is ``multiple_hidden`` so that its G VAEs together stay near the
    other families' size; the D-VAE-ST has the spatial transformer and the batch-marginal KL)."""
    hier = dict(latent_dims=tuple(p["latent_dims"]), hidden=tuple(p["hier_hidden"]), block_layers=1,
                activation="elu")
    if family == "vae":
        return vae_model("conv", p)
    if family == "convdraw":
        return convdraw_model({"iterations": p["iterations"],
                               **{k[len("convdraw_"):]: v for k, v in p.items() if k.startswith("convdraw_")}})
    if family in ("multiple", "single", "rnn", "quotient"):
        from c2f.models.progressive import make_variant
        hidden = p["multiple_hidden"] if family == "multiple" else p["progressive_hidden"]  # G small VAEs: narrower
        base = m.ProgressiveConfig(groups=p["groups"], group_size=1, hidden=tuple(hidden))
        return make_variant("multiple_combined" if family == "multiple" else family, base)
    if family in ("hvae", "lvae"):
        return m.make_hierarchical(family, m.HierarchicalConfig(**hier))
    if family == "vlae":
        return m.VLAE(m.VLAEConfig(**hier))
    if family == "pixelvae":
        return pixelvae_model("pixelvae", {k[len("pixel_"):]: v for k, v in p.items() if k.startswith("pixel_")},
                              conditioning="bias")
    if family == "dvae_st":
        return m.DVAE(m.DVAEConfig(transform=True, marginal_weight=p["dvae_marginal_weight"]))
    raise ValueError(f"unknown synthesis family {family!r}; choose one of {SYNTHESIS_FAMILIES}")


DVAE_KINDS = ("dvae", "dvae_st")


def dvae_model(kind: str, p: Mapping[str, Any], **overrides):
    """Chapter 05's D-VAE (``"dvae"``) or D-VAE-ST (``"dvae_st"``, with the spatial transformer) from its
    parameters `p` (``arch``, ``transform_prior_std``, ``marginal_weight``, ``prototype_init``); `overrides`
    replace fields of the configuration (``num_classes``, ``estimator``, and any of the four)."""
    if kind not in DVAE_KINDS:
        raise ValueError(f"unknown D-VAE kind {kind!r}; choose one of {DVAE_KINDS}")
    cfg = dict(transform=kind == "dvae_st", arch=p["arch"], transform_prior_std=p["transform_prior_std"],
               marginal_weight=p["marginal_weight"], prototype_init=p["prototype_init"])
    return m.DVAE(m.DVAEConfig(**{**cfg, **overrides}))


AIR_KINDS = ("air", "air_difference", "dair")


def air_model(kind: str, p: Mapping[str, Any], **overrides):
    """Chapter 07's models from its parameters `p`: AIR (the AIR paper's inference, the LSTM reads the image),
    Difference-AIR (it reads the residual x − canvas) or DAIR (chapter 05's D-VAE-ST on each window), on
    canvases of ``canvas`` px with windows of ``digit_size`` px (s₀ = canvas / digit_size). `overrides` set any
    other ``AIRConfig`` field (an ablation's one change)."""
    if kind not in AIR_KINDS:
        raise ValueError(f"unknown AIR kind {kind!r}; choose one of {AIR_KINDS}")
    cfg = dict(image_shape=(1, p["canvas"], p["canvas"]), max_steps=p["max_steps"], z_what=p["z_what"],
               hidden=p["hidden"], features=p["features"], pres_prior=p["pres_prior"],
               scale_prior=p["canvas"] / p["digit_size"], pres_init_logit=p["pres_init_logit"],
               likelihood=p["likelihood"], pixel_var=p["pixel_var"], where_init_logvar=p["where_init_logvar"],
               num_classes=p["num_classes"], class_estimator=p["dair_class_estimator"],
               class_marginal_weight=p["dair_marginal_weight"],
               inference="difference" if kind == "air_difference" else "air",
               what="prototypes" if kind == "dair" else "gaussian")
    return m.AIR(m.AIRConfig(**{**cfg, **overrides}))
