"""Chapter 08's coarse-to-fine measure: every model's code as an ordered list of parts, and what a prefix holds.

Each model family orders its code in its own way: the groups of a progressive VAE, the iterations of
Conv-DRAW, the latent layers of a hierarchy from the top down, the class before the transformation in the
D-VAE-ST. A flat latent (VAE, PixelVAE) has no order of its own; its units are ordered by their KL, largest
first (the most favourable order for it), in parts whose cumulative sizes are 1, 2, 4, ... units.
:func:`code_order` builds that order as a :class:`CodeOrder`; :func:`prefix_measures` then gives, for every
prefix g (the first g parts):

* ``kl_nats``: the nats the prefix costs, the test KL of its parts (from :func:`c2f.evaluate.evaluate`);
* ``recon_nats``: −E log p(x | prefix), the image's log-likelihood under the decoder when the prefix is at its
  posterior mean and the rest of the code is completed the way the model completes a partial code (the
  (conditional) prior mean; the progressive VAEs leave later groups out, as they were trained to);
* ``probe_accuracy``: the test accuracy of a linear probe (:func:`probe`, scikit-learn's logistic regression)
  trained on the prefix's posterior means of training images, i.e. how much *class* information it holds in
  a linearly readable form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from c2f.data import ImageSet, batches
from c2f.evaluate import evaluation_images, latent_means


# the families chapter 08 compares: name -> (the chapter that introduces it, how its code is ordered)
FAMILIES = {
    "vae": ("01", "units by KL"), "convdraw": ("03", "iterations"), "multiple": ("02", "groups"),
    "single": ("02", "groups"), "rnn": ("02", "groups"), "quotient": ("02", "groups"),
    "hvae": ("04", "layers, top first"), "lvae": ("04", "layers, top first"), "vlae": ("04", "layers, top first"),
    "pixelvae": ("06", "units by KL"), "dvae_st": ("05", "class, then transformation"),
}


@dataclass
class CodeOrder:
    """A model's code in parts, coarse first. Part i has the columns ``features[i]`` of ``model.latent_means``
    and ``kl[i]`` of the per-dimension KL (``evaluate(...)["kl_per_dim"]``); ``log_px(x, g)`` is the per-image
    log p(x | first g parts at their posterior means, the rest completed by the model)."""

    kind: str  # how the order is defined, in words
    labels: list[str]  # one per part
    features: list[list[int]]
    kl: list[list[int]]
    log_px: Callable[[torch.Tensor, int], torch.Tensor]

    def __len__(self) -> int:
        return len(self.labels)


def _by_kl(kl_per_dim) -> list[list[int]]:
    """Units ordered by KL (largest first), in parts of cumulative size 1, 2, 4, ... (the last part ends at D)."""
    order = torch.as_tensor(kl_per_dim).argsort(descending=True).tolist()
    parts, start, size = [], 0, 1
    while start < len(order):
        parts.append(order[start:size])
        start, size = size, 2 * size
    return parts


def _masked(z: torch.Tensor, keep: list[int]) -> torch.Tensor:
    """z with every column not in `keep` set to 0 (the prior mean of a standard-normal latent)."""
    out = torch.zeros_like(z)
    out[:, keep] = z[:, keep]
    return out


def code_order(model, kl_per_dim) -> CodeOrder:
    """The coarse-to-fine order of `model`'s code (see the module docstring). `kl_per_dim` is the test KL of
    every column of ``elbo_terms(x).kl_dims``, used to order a flat latent's units."""
    from c2f.models.convdraw import ConvDRAW
    from c2f.models.dvae import DVAE
    from c2f.models.hierarchical import TopDownVAE
    from c2f.models.layered import IndependentLatentVAE
    from c2f.models.pixelvae import PixelVAE
    from c2f.models.progressive import GroupModel
    from c2f.models.vae import VAE

    if isinstance(model, (VAE, PixelVAE)):
        parts = _by_kl(kl_per_dim)
        flat = [u for p in parts for u in p]

        def log_px(x, g):
            z = _masked(model.encode(x).mean, flat[:sum(len(p) for p in parts[:g])])
            return (model.decode(z) if isinstance(model, VAE) else model.decode(x, z)).log_prob(x)
        sizes = [sum(len(p) for p in parts[:i + 1]) for i in range(len(parts))]
        labels = [f"the {n} unit{'s' if n > 1 else ''} of highest KL" for n in sizes]
        return CodeOrder("units by KL, largest first", labels, parts, parts, log_px)
    if isinstance(model, GroupModel):
        k, n = model.cfg.group_size, model.default_groups
        cols = [list(range(g * k, (g + 1) * k)) for g in range(n)]

        def log_px(x, g):
            zs = model.split_groups(model.latent_means(x))
            return model.likelihood(model.decode_logits(zs[:g] + [None] * (len(zs) - g))).log_prob(x)
        return CodeOrder("latent groups 1..G", [f"group {g}" for g in range(1, n + 1)], cols, cols, log_px)
    if isinstance(model, ConvDRAW):
        t_max, n = model.cfg.iterations, model.cfg.latents_per_iteration

        def log_px(x, g):
            choose = lambda t, q, p: q.mean if t < g else p.mean  # noqa: E731 - the rest: the prior's mean
            canvas = list(model.iterate(x, choose))[-1]["canvas"]
            return model.likelihood(canvas).log_prob(x)
        return CodeOrder("iterations 1..T", [f"iteration {t}" for t in range(1, t_max + 1)],
                         [list(range(t * n, (t + 1) * n)) for t in range(t_max)], [[t] for t in range(t_max)], log_px)
    if isinstance(model, (TopDownVAE, IndependentLatentVAE)):
        sizes = list(model.layer_sizes)
        L, starts = len(sizes), [sum(sizes[:l]) for l in range(len(sizes))]
        cols = [list(range(starts[l], starts[l] + sizes[l])) for l in reversed(range(L))]  # the top layer first

        def log_px(x, g):
            means = model.posterior_means(x)
            if isinstance(model, IndependentLatentVAE):
                zs = [m if l >= L - g else torch.zeros_like(m) for l, m in enumerate(means)]
                return model.decode_layers(zs).log_prob(x)
            choose = lambda l, p: means[l] if l >= L - g else p[0]  # noqa: E731 - lower layers: conditional prior mean
            return model.likelihood(model.top_down(len(x), choose, x.device)[2]).log_prob(x)
        return CodeOrder("latent layers from the top down", [f"layer {l} (of {L})" for l in reversed(range(1, L + 1))],
                         cols, cols, log_px)
    if isinstance(model, DVAE):
        k = model.cfg.num_classes
        features, kl, labels = [list(range(k))], [[0]], ["class"]
        if model.cfg.transform:
            features, kl, labels = features + [list(range(k, k + 6))], kl + [[1]], labels + ["transformation"]

        def log_px(x, g):
            z = F.one_hot(model.cluster(x), k).float()
            t = None
            if model.cfg.transform:
                t = model.transform_posterior(x).mean if g > 1 else model.transform_prior(len(x)).mean
            return model.decode(z, model.components(t)).log_prob(x)
        return CodeOrder("class, then transformation", labels, features, kl, log_px)
    raise TypeError(f"no coarse-to-fine order is defined for a {type(model).__name__}")


def probe(train_codes, train_labels, test_codes, test_labels, *, max_iter: int = 2000) -> float:
    """Test accuracy of a linear probe: standardised features, then multinomial logistic regression
    (scikit-learn, L2 penalty C = 1, L-BFGS) fitted on the training codes. With no features (an empty code)
    the probe can only predict the most frequent training label."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    x_train, x_test = (np.asarray(torch.as_tensor(c).double().cpu()) for c in (train_codes, test_codes))
    y_train, y_test = (np.asarray(torch.as_tensor(y).cpu()) for y in (train_labels, test_labels))
    if x_train.shape[1] == 0:
        values, counts = np.unique(y_train, return_counts=True)
        return float((y_test == values[counts.argmax()]).mean())
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
    # BLAS and OpenMP get torch's thread count (C2F_THREADS): their default, one thread per core, ran a probe
    # up to 100 times slower on a shared machine
    with threadpool_limits(limits=torch.get_num_threads()):
        return float(clf.fit(x_train, y_train).score(x_test, y_test))


@torch.no_grad()
def prefix_measures(model, order: CodeOrder, kl_per_dim, test: ImageSet, probe_train: ImageSet, *,
                    batch_size: int = 500) -> list[dict]:
    """For g = 1..len(order): ``kl_nats`` (the prefix's test KL), ``recon_nats`` (−E log p(x | prefix) on the
    fixed test images of `test`, :func:`c2f.evaluate.evaluation_images`) and ``probe_accuracy`` (a
    :func:`probe` fitted on the prefix codes of `probe_train`, scored on those of `test`)."""
    was_training = model.training
    model.eval()
    kl = torch.as_tensor(kl_per_dim, dtype=torch.float64)
    fixed = evaluation_images(test)
    sums = torch.zeros(len(order), dtype=torch.float64)
    for x, _ in batches(fixed, batch_size, shuffle=False):
        for g in range(1, len(order) + 1):
            sums[g - 1] += order.log_px(x, g).double().sum().cpu()
    codes_train, codes_test = (latent_means(model, d).cpu() for d in (probe_train, test))
    model.train(was_training)
    out, cols = [], []
    for g in range(1, len(order) + 1):
        cols = cols + order.features[g - 1]
        out.append({"kl_nats": float(kl[[c for p in order.kl[:g] for c in p]].sum()),
                    "recon_nats": float(-sums[g - 1] / len(fixed)),
                    "probe_accuracy": probe(codes_train[:, cols], probe_train.y, codes_test[:, cols], fixed.y)})
    return out


def accuracy_within(curve: list[dict], nats: float, chance: float) -> float:
    """The probe accuracy of the longest prefix that costs at most `nats` (`chance` when even the first part
    costs more): what a model tells about the class for a given budget of nats."""
    within = [c["probe_accuracy"] for c in curve if c["kl_nats"] <= nats]
    return within[-1] if within else chance
