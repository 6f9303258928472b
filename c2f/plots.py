"""Figures in one consistent style: image grids, training curves, reconstructions, traversals, latents."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
from scipy.stats import norm
from torchvision.utils import make_grid

PALETTE = "colorblind"

# One colour per model family, the same in every figure of the book. A name matches the longest family
# name it starts with, after dropping a data-set tag ("fashion_lvae" -> "lvae"); a name of VARIANT_OF belongs
# to that family ("vae_conv" -> "vae"); other names get a colour from a stable hash, so they too keep it from
# one figure to the next. Variants of one family share its colour and differ in line style and marker
# (:func:`model_styles`). The colours were picked greedily, each as far as possible (CIEDE2000, ΔE00) from those
# before it, on an sRGB grid with lightness L* 35-72 (visible on white) and chroma ≥ 30 (apart from the grey
# baselines): no two families are closer than MIN_FAMILY_DISTANCE (ΔE00 ≈ 2 is a just-noticeable difference).
FAMILY_COLORS = {
    "no_latents": "#737373", "pca": "#a6a6a6",
    "vae": "#0173b2", "single": "#ff3c00", "multiple": "#00c300", "rnn": "#a5004b", "quotient": "#e1a500",
    "pcaae": "#875a96", "hvae": "#3c0fff", "markov_hvae": "#00b4f0", "lvae": "#006900", "vlae": "#f000ff",
    "svae": "#874b00", "msvae": "#00a596", "dvae": "#ff7896", "dvae_st": "#b40f0f", "convdraw": "#87873c",
    "pixelcnn": "#d29678", "pixelvae": "#9696ff", "air": "#5a5a00", "dair": "#e196e1", "codec": "#f01e4b",
}
MIN_FAMILY_DISTANCE = 15.0  # ΔE00; the palette's closest pair is 16.8 apart
VARIANT_OF = {"standard": "vae", "jpeg": "codec", "jpeg2000": "codec", "webp": "codec", "avif": "codec"}
_TAGS = ("fashion_", "cb_", "omniglot_drawers_", "omniglot_", "mnist_", "static_", "dynamic_")
_TAB = sns.color_palette("tab20", 20)


def model_family(name: str) -> str | None:
    """The family a model's name belongs to (see :data:`FAMILY_COLORS`), None when it matches none."""
    key = name.lower().rsplit("/", 1)[-1].replace(" ", "_")  # "no latents", "standard (rest from prior)"
    for tag in _TAGS:
        key = key.removeprefix(tag)
    names = {**{f: f for f in FAMILY_COLORS}, **VARIANT_OF}
    matches = [f for f in names if key == f or key.startswith(f + "_") or key.startswith(f + "-")]
    return names[max(matches, key=len)] if matches else None


def model_color(name: str):
    """The colour of a model family in every figure of the book (see :data:`FAMILY_COLORS`)."""
    family = model_family(name)
    if family is not None:
        return FAMILY_COLORS[family]
    import zlib

    return _TAB[zlib.crc32(name.lower().encode()) % len(_TAB)]


_VARIANT_STYLES = [("o", "-"), ("s", ":"), ("^", "-."), ("D", (0, (5, 1))), ("v", (0, (3, 1, 1, 1, 1, 1)))]


def model_styles(names: Sequence[str]) -> dict[str, dict]:
    """``color``, ``marker`` and ``linestyle`` of each model of one figure: its family's colour; the variants
    of one family that share the figure (in the order given) get successive markers and line styles."""
    seen: dict = {}
    styles = {}
    for name in names:
        variant = seen.setdefault(str(model_color(name)), [])
        variant.append(name)
        marker, line = _VARIANT_STYLES[(len(variant) - 1) % len(_VARIANT_STYLES)]
        styles[name] = {"color": model_color(name), "marker": marker, "linestyle": line}
    return styles


def use_style() -> None:
    """The book's plot style (applied on import)."""
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE)
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 120, "axes.titleweight": "bold",
                         "image.cmap": "gray", "figure.autolayout": False})


use_style()


def image_grid(images: torch.Tensor, nrow: int = 10, ax=None, title: str | None = None, padding: int = 2):
    """Show a batch of images [N, C, H, W] in [0, 1] as one grid (torchvision's ``make_grid``)."""
    grid = make_grid(images.detach().float().cpu().clamp(0, 1), nrow=nrow, padding=padding, pad_value=1.0)
    if ax is None:
        _, ax = plt.subplots(figsize=(min(12, 0.6 * nrow + 1), 0.6 * grid.shape[1] / 30 + 0.6))
    ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax.figure


def reconstructions(x: torch.Tensor, x_hat: torch.Tensor, title: str | None = None):
    """Originals (top row) above their reconstructions (bottom row)."""
    fig, axes = plt.subplots(2, 1, figsize=(0.6 * len(x) + 1, 1.8))
    image_grid(x, nrow=len(x), ax=axes[0])
    image_grid(x_hat, nrow=len(x), ax=axes[1])
    axes[0].set_title(title or "data (top) and reconstructions (bottom)")
    return fig


def training_curves(histories: dict[str, dict], keys: Sequence[str] = ("elbo", "recon", "kl"),
                    labels: dict[str, str] | None = None):
    """One panel per training scalar, one line per model, against (fractional) epochs.

    `histories` maps a model name to the history returned by :func:`c2f.train.fit`; the validation ELBO
    is drawn too when the history has one.
    """
    labels = labels or {"elbo": "ELBO (nats)", "recon": "reconstruction −log p(x|z) (nats)", "kl": "KL (nats)"}
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys):
        styles = model_styles(list(histories))
        for name, h in histories.items():
            color = styles[name]["color"]
            steps_per_epoch = h["steps"]["step"][-1] / h["epochs"]["epoch"][-1]
            epochs = np.array(h["steps"]["step"]) / steps_per_epoch
            ax.plot(epochs, h["steps"][key], marker=styles[name]["marker"] if len(epochs) < 20 else None, ms=3,
                    lw=1.5, color=color, ls=styles[name]["linestyle"], label=f"{name} (training)")
            if key == "elbo" and "valid_elbo" in h["epochs"]:
                ax.plot(h["epochs"]["epoch"], h["epochs"]["valid_elbo"], "s--", ms=3, color=color,
                        label=f"{name} (validation)")
        ax.set_xlabel("epoch")
        ax.set_title(labels.get(key, key))
        _zoom_past_first_steps(ax)
    axes[0, -1].legend(fontsize="small", bbox_to_anchor=(1.02, 1), loc="upper left")  # beside the panels
    fig.tight_layout()
    return fig


def _zoom_past_first_steps(ax, skip: float = 0.05) -> None:
    """Fit the y range to the curves after their first `skip` fraction of points, so the large values of the
    first updates do not flatten the rest (the early points are still drawn, clipped at the edge)."""
    tails = [np.asarray(line.get_ydata(), dtype=float)[int(len(line.get_ydata()) * skip):] for line in ax.get_lines()]
    tails = [t for t in tails if len(t) > 0]
    if tails and max(len(line.get_ydata()) for line in ax.get_lines()) >= 20:
        lo, hi = min(t.min() for t in tails), max(t.max() for t in tails)
        pad = 0.05 * (hi - lo or 1.0)
        ax.set_ylim(lo - pad, hi + pad)


def traversal(generate, z0: torch.Tensor, dims: Sequence[int], values: torch.Tensor, ax=None, title=None,
              labels: Sequence[str] | None = None, value_format: str = "{:+.1f}"):
    """Decode z0 with one latent dimension at a time swept over `values`: one row per dimension. With
    `labels` (one per row, e.g. the dimension and its KL) each row is labelled on the left and every column
    below the last row with its value (formatted with `value_format`)."""
    rows = []
    for d in dims:
        z = z0.expand(len(values), -1).clone()
        z[:, d] = values.to(z)
        rows.append(generate(z))
    if labels is not None:
        return image_rows(rows, labels, title=title, column_labels=[value_format.format(float(v)) for v in values])
    fig = image_grid(torch.cat(rows), nrow=len(values), ax=ax, title=title)
    return fig


def latent_manifold(generate, n: int = 20, device=None, ax=None, title=None):
    """For a 2-D latent space: decode a grid of z at evenly spaced Gaussian quantiles (5 % to 95 %)."""
    q = torch.tensor(norm.ppf(np.linspace(0.05, 0.95, n)), dtype=torch.float32, device=device)
    z = torch.stack(torch.meshgrid(q.flip(0), q, indexing="ij")[::-1], dim=-1).reshape(-1, 2)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    return image_grid(generate(z), nrow=n, ax=ax, title=title, padding=0)


def latent_scatter(z: torch.Tensor, labels: torch.Tensor, ax=None, title=None):
    """Posterior means of a 2-D latent space, coloured by class."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 5))
    z, labels = z.detach().cpu().numpy(), labels.detach().cpu().numpy()
    sns.scatterplot(x=z[:, 0], y=z[:, 1], hue=labels, palette="tab10", s=6, linewidth=0, ax=ax, legend="full")
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.legend(title="class", fontsize="small", markerscale=2, bbox_to_anchor=(1.01, 1), loc="upper left")
    if title:
        ax.set_title(title)
    return ax.figure


def kl_per_dimension(kls: dict[str, Sequence[float]], variances: dict[str, torch.Tensor] | None = None,
                     threshold: float = 0.01):
    """KL per latent dimension, sorted, one panel per model; with `variances`, the active-unit statistic
    Cov_x(E_q[z_u|x]) on a second axis, and its threshold."""
    fig, axes = plt.subplots(1, len(kls), figsize=(5 * len(kls), 3.2), squeeze=False)
    for ax, (name, kl) in zip(axes[0], kls.items()):
        kl = np.asarray(kl)
        order = np.argsort(-kl)
        ax.bar(np.arange(len(kl)), kl[order], color=sns.color_palette(PALETTE)[0])
        ax.set_xlabel("latent dimension (sorted by KL)")
        ax.set_ylabel("KL (nats)")
        ax.set_title(name)
        if variances is not None:
            var = variances[name].detach().cpu().numpy()[order]
            ax2 = ax.twinx()
            ax2.plot(np.arange(len(kl)), var, "o", ms=3, color=sns.color_palette(PALETTE)[3])
            ax2.axhline(threshold, ls=":", color=sns.color_palette(PALETTE)[3])
            ax2.set_yscale("log")
            ax2.set_ylabel("Cov$_x$(E$_q$[z|x])", color=sns.color_palette(PALETTE)[3])
            ax2.grid(False)
    fig.tight_layout()
    return fig


def lines_by_group(series: dict[str, Sequence[float]], ylabel: str, title: str | None = None, ax=None,
                   xlabel: str = "number of latent groups decoded, g", errors: dict | None = None,
                   references: dict[str, float] | None = None, dashed: Sequence[str] = (), legend: bool = True):
    """One line per model of a quantity indexed by latent group g = 1..G (a prefix curve, the KL of each
    group, a reconstruction error per number of latents); `errors` (same keys) draws ± bands, the series
    named in `dashed` are drawn dashed (e.g. a control of a family) and `references` are horizontal dashed
    lines (e.g. a model with no latents)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4))
    styles = model_styles(list(series))  # variants of one family: same colour, other marker and line
    for name, values in series.items():
        color, marker, line = (styles[name][k] for k in ("color", "marker", "linestyle"))
        g = np.arange(1, len(values) + 1)
        ax.plot(g, values, marker=marker, ls="--" if name in dashed else line, ms=4, lw=1.5, color=color,
                label=name, mfc="white" if name in dashed else color)
        if errors is not None and name in errors:
            e = np.asarray(errors[name])
            ax.fill_between(g, np.asarray(values) - e, np.asarray(values) + e, color=color, alpha=0.2)
    for name, value in (references or {}).items():
        ax.axhline(value, ls="--", lw=1.2, color=model_color(name), label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        ax.set_title(title)
    if legend:
        ax.legend(fontsize="small", bbox_to_anchor=(1.01, 1), loc="upper left")
    return ax.figure


def image_rows(rows: Sequence[torch.Tensor], labels: Sequence[str], title: str | None = None,
               column_labels: Sequence[str] | None = None):
    """Rows of images [N, C, H, W] (equal N) stacked into one figure, each row labelled on the left and,
    with `column_labels`, each column labelled under the last row."""
    n = len(rows[0])
    extra = 0.25 if column_labels is not None else 0.0
    fig, axes = plt.subplots(len(rows), 1, figsize=(0.55 * n + 1.6, 0.62 * len(rows) + 0.5 + extra))
    axes = np.atleast_1d(axes)
    for ax, row, label in zip(axes, rows, labels):
        image_grid(row, nrow=n, ax=ax)
        ax.set_axis_on()
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize="small")
    if column_labels is not None:
        width = rows[0].shape[-1] + 2  # make_grid's padding of 2 pixels
        axes[-1].set_xticks([2 + width * (i + 0.5) - 1 for i in range(n)])
        axes[-1].set_xticklabels(column_labels, fontsize="x-small")
        axes[-1].tick_params(length=0)
    if title:
        axes[0].set_title(title)
    return fig


def correlation_matrices(matrices: dict[str, torch.Tensor], title: str | None = None, ncols: int = 4,
                         annotate: bool = False):
    """Heatmaps of correlation (or covariance) matrices in [−1, 1], one panel per model, `ncols` per row;
    with `annotate` every cell shows its value (one decimal)."""
    nrows = -(-len(matrices) // ncols)
    ncols = min(ncols, len(matrices))
    size = 3.6 if annotate else 3.0
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols + 0.8, size * nrows + 0.4), squeeze=False)
    for ax, (name, m) in zip(axes.flat, matrices.items()):
        m = m.detach().cpu().numpy()
        sns.heatmap(m, vmin=-1, vmax=1, center=0, cmap="vlag", square=True, cbar=False, ax=ax,
                    annot=annotate, fmt=".1f", annot_kws={"fontsize": 6},
                    xticklabels=np.arange(1, len(m) + 1), yticklabels=np.arange(1, len(m) + 1))
        ax.set_title(name, fontsize="medium")
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(matrices):]:
        ax.set_axis_off()
    fig.colorbar(axes.flat[0].collections[0], ax=axes, shrink=0.6, location="right")
    if title:
        fig.suptitle(title)
    return fig


def mean_band(ax, x, runs, label: str | None = None, color=None, alpha: float = 0.2):
    """Mean over runs (the rows of `runs`, [R, T]) as a line, and ± one standard deviation as a band;
    non-finite values (e.g. the log-variance −inf of an exact gradient) are left out."""
    runs = np.asarray(runs, dtype=float)
    runs = np.where(np.isfinite(runs), runs, np.nan)
    mean = np.nanmean(runs, axis=0) if np.isfinite(runs).any() else np.full(runs.shape[1], np.nan)
    std = np.nanstd(runs, axis=0) if runs.shape[0] > 1 and np.isfinite(runs).any() else np.zeros_like(mean)
    line, = ax.plot(x, mean, lw=1.5, label=label, color=color)
    ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=alpha, lw=0)
    return line


def rate_curves(curves: dict[str, tuple[Sequence[float], Sequence[float]]], xlabel: str, ylabel: str, ax=None,
                title: str | None = None, dashed: Sequence[str] = ()):
    """Rate–distortion style curves: one line per codec or model (x, y), in its family colour; the names in
    `dashed` are drawn dashed (e.g. a theoretical rate beside a real one)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4))
    styles = model_styles(list(dict.fromkeys(name.split(" ")[0] for name in curves)))
    for name, (x, y) in curves.items():
        order = np.argsort(x)
        style = styles[name.split(" ")[0]]
        ax.plot(np.asarray(x)[order], np.asarray(y)[order], ms=3.5, lw=1.5, color=style["color"],
                marker=None if name in dashed else style["marker"], ls="--" if name in dashed else style["linestyle"],
                label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small", bbox_to_anchor=(1.01, 1), loc="upper left")
    return ax.figure


def rate_distortion(learned: dict, classic: dict, front: Sequence, title: str):
    """PSNR against bits per image (log scale) of :func:`c2f.codec.codec_curves`, one panel per rate of
    :data:`c2f.codec.RATES` (whole files; the container separated; a mosaic's amortised rate): the learned
    codec's best curve (`front`), every classic codec ({codec: points}) and, dashed, the KL of what the learned
    codec sent along its best curve (the rate relative-entropy coding of a posterior sample would approach)."""
    from c2f.codec import RATES

    titles = {"file": "whole files", "payload": "container separated", "mosaic": "one mosaic file"}
    fig, axes = plt.subplots(1, len(RATES), figsize=(17, 4), sharey=True)
    for ax, kind in zip(axes, RATES):
        curves = {"convdraw": tuple(map(list, zip(*[p.rate(kind) for p in front])))}
        if kind == "payload":
            curves["convdraw KL of what it sent"] = ([p.extra["kl_bits"] for p in front], [p.psnr for p in front])
        curves.update({c: tuple(map(list, zip(*[p.rate(kind) for p in pts]))) for c, pts in classic.items()})
        rate_curves(curves, "bits per image", "PSNR (dB)", ax=ax, dashed=[n for n in curves if "KL" in n])
        ax.set_xscale("log")
        ax.set_title(titles[kind])
        if ax is not axes[-1]:
            ax.get_legend().remove()
    axes[0].set_ylim(top=min(axes[0].get_ylim()[1], 50))  # lossless settings (infinite PSNR) run off the top
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# --- images computed from a model with ordered latent groups (see c2f.models.progressive) ---------------


@torch.no_grad()
def decoded_rows(model, x, order: Sequence[int] | None = None, cumulative: bool = True) -> list[torch.Tensor]:
    """Images for the conceptual-compression figures: row r decodes the groups order[0..r] (cumulative) or
    group order[r] alone (not cumulative), each at its posterior mean. `order` defaults to 1..G."""
    model.eval()
    zs = model.split_groups(model.latent_means(x))
    order = list(range(len(zs))) if order is None else list(order)
    rows = []
    for r in range(len(order)):
        keep = set(order[:r + 1]) if cumulative else {order[r]}
        rows.append(model.decode_groups([z if i in keep else None for i, z in enumerate(zs)]))
    return rows


@torch.no_grad()
def pair_traversal(model, i: int, j: int, values: torch.Tensor) -> torch.Tensor:
    """Decode a grid over (z_i, z_j) (first latent of groups i and j) with every other latent at 0: [n², C, H, W],
    row-major with z_i down the rows and z_j along the columns."""
    values = values.to(next(model.parameters()).device)
    n, k = len(values), model.cfg.group_size
    z = torch.zeros(n * n, model.cfg.latent_dim, device=values.device)
    z[:, i * k] = values.repeat_interleave(n)
    z[:, j * k] = values.repeat(n)
    return model.decode_groups(model.split_groups(z))
