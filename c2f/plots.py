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
# name it starts with, after dropping a data-set or variant tag ("fashion_lvae" -> "lvae"); other names get
# a colour from a stable hash, so they too keep it from one figure to the next.
_CB, _TAB = sns.color_palette("colorblind", 10), sns.color_palette("tab20", 20)
FAMILY_COLORS = {
    "no_latents": (0.45, 0.45, 0.45), "pca": (0.6, 0.6, 0.6),
    "vae": _CB[0], "vae_mlp": _CB[0], "vae_conv": _CB[9], "standard": _CB[0],
    "single": _CB[1], "multiple": _CB[2], "rnn": _CB[3], "quotient": _CB[4], "pcaae": _CB[5],
    "hvae": _TAB[0], "markov_hvae": _TAB[2], "lvae": _TAB[4], "vlae": _TAB[6], "svae": _TAB[8],
    "msvae": _TAB[10], "dvae": _CB[7], "dvae_st": _CB[8],
    "convdraw": _TAB[12], "pixelcnn": _TAB[14], "pixelvae": _TAB[16], "air": _TAB[18], "dair": _TAB[19],
    "jpeg": _TAB[1], "jpeg2000": _TAB[3], "webp": _TAB[5], "avif": _TAB[7],
}
_TAGS = ("fashion_", "cb_", "omniglot_", "mnist_", "static_", "dynamic_")


def model_color(name: str):
    """The colour of a model family in every figure of the book (see :data:`FAMILY_COLORS`)."""
    key = name.lower().rsplit("/", 1)[-1]
    for tag in _TAGS:
        key = key.removeprefix(tag)
    matches = [f for f in FAMILY_COLORS if key == f or key.startswith(f + "_") or key.startswith(f + "-")]
    if matches:
        return FAMILY_COLORS[max(matches, key=len)]
    import zlib

    return _TAB[zlib.crc32(key.encode()) % len(_TAB)]


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
        for name, h in histories.items():
            color = model_color(name)
            steps_per_epoch = h["steps"]["step"][-1] / h["epochs"]["epoch"][-1]
            epochs = np.array(h["steps"]["step"]) / steps_per_epoch
            ax.plot(epochs, h["steps"][key], "o-" if len(epochs) < 20 else "-", ms=3, lw=1.5, color=color,
                    label=f"{name} (training)")
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
                   xlabel: str = "number of latent groups decoded, g", errors: dict | None = None):
    """One line per model of a quantity indexed by latent group g = 1..G (a prefix curve, the KL of each
    group, a reconstruction error per number of latents); `errors` (same keys) draws ± bands."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4))
    for name, values in series.items():
        color = model_color(name)
        g = np.arange(1, len(values) + 1)
        ax.plot(g, values, "o-", ms=4, lw=1.5, color=color, label=name)
        if errors is not None and name in errors:
            e = np.asarray(errors[name])
            ax.fill_between(g, np.asarray(values) - e, np.asarray(values) + e, color=color, alpha=0.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        ax.set_title(title)
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


def correlation_matrices(matrices: dict[str, torch.Tensor], title: str | None = None):
    """Heatmaps of correlation (or covariance) matrices in [−1, 1], one panel per model."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(3.1 * len(matrices) + 0.6, 3.0), squeeze=False)
    for ax, (name, m) in zip(axes[0], matrices.items()):
        m = m.detach().cpu().numpy()
        sns.heatmap(m, vmin=-1, vmax=1, center=0, cmap="vlag", square=True, cbar=ax is axes[0, -1], ax=ax,
                    xticklabels=np.arange(1, len(m) + 1), yticklabels=np.arange(1, len(m) + 1))
        ax.set_title(name, fontsize="small")
        ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
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
    for name, (x, y) in curves.items():
        order = np.argsort(x)
        ax.plot(np.asarray(x)[order], np.asarray(y)[order], "--" if name in dashed else "o-", ms=3.5, lw=1.5,
                color=model_color(name.split(" ")[0]), label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small", bbox_to_anchor=(1.01, 1), loc="upper left")
    return ax.figure
