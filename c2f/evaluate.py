"""Evaluation: ELBO, importance-weighted NLL, bits/dim, KL per latent dimension, active units, summaries.

Models follow :class:`c2f.objectives.LatentVariableModel`: ``elbo_terms(x)`` (an
:class:`~c2f.objectives.ElboTerms` of per-example ``log_px``, ``kl_dims``, ``kl``, ``elbo``),
``log_importance_weights(x, k)`` (shape [k, B]) and ``latent_means(x)``; a model that decodes several
images per image and importance sample says how many in ``decodes_per_sample``. Evaluation runs on a fixed
binarization of the data so that numbers repeat, and leaves the model in the mode it found it in.

Every evaluation sees the same test images: a dynamically binarized set is binarized once with
:data:`TEST_BINARIZATION_SEED`, whatever the trial's seed. The `seed` of a function that draws (posterior
samples, importance samples) seeds those draws only, so two seeds of one trial differ by their training and
their Monte-Carlo noise, never by their test images.
"""

from __future__ import annotations

import math
import re

import torch

from c2f.data import ImageSet, batches
from c2f.nn import standard_normal

TEST_BINARIZATION_SEED = 0  # the one binarization of a test set that every model and every seed is scored on


def evaluation_images(data: ImageSet) -> ImageSet:
    """The fixed test images every evaluation sees: `data` binarized with :data:`TEST_BINARIZATION_SEED`."""
    return data.fixed_binarization(TEST_BINARIZATION_SEED)


@torch.no_grad()
def iw_log_likelihood(model, x: torch.Tensor, k: int, chunk: int = 100, **model_kwargs) -> torch.Tensor:
    """Importance-sampled estimate of log p(x) per example (Burda et al. 2016):

    log p(x) ≈ logsumexp_i [log p(x, z_i) − log q(z_i | x)] − log k,  z_i ~ q(z | x), i = 1..k.

    The k samples are drawn in chunks of `chunk` to bound memory. `model_kwargs` (e.g. ``groups=g`` for a
    model that can decode a prefix of its latent groups) are passed to ``log_importance_weights``.
    """
    logw = torch.cat([model.log_importance_weights(x, min(chunk, k - i), **model_kwargs)
                      for i in range(0, k, chunk)])
    return torch.logsumexp(logw.float(), dim=0) - math.log(k)


def samples_per_call(model, iw_batch: int, batch: int) -> int:
    """How many importance samples of a batch of `batch` images to score at once so that at most `iw_batch`
    images are decoded at once (at least one sample)."""
    return max(1, iw_batch // (batch * getattr(model, "decodes_per_sample", 1)))


@torch.no_grad()
def iw_curve(model, x: torch.Tensor, ks, chunk: int = 100) -> list[float]:
    """The mean IW estimate of the NLL, −L_K, for every K in `ks`, from one set of max(ks) samples per image
    (L_K uses the first K of them): the whole curve costs one evaluation at the largest K, and its points
    differ only by the samples added, not by fresh noise."""
    k_max = max(ks)
    logw = torch.cat([model.log_importance_weights(x, min(chunk, k_max - i)) for i in range(0, k_max, chunk)])
    return [-(torch.logsumexp(logw[:k].float(), dim=0) - math.log(k)).mean().item() for k in ks]


@torch.no_grad()
def elbo(model, data: ImageSet, *, batch_size: int = 500, seed: int = 0) -> float:
    """Mean test ELBO in nats (one posterior sample per image; the KL in closed form)."""
    return evaluate(model, data, batch_size=batch_size, seed=seed)["elbo_nats"]


@torch.no_grad()
def evaluate(model, data: ImageSet, *, iw_samples: int = 0, batch_size: int = 500, seed: int = 0,
             iw_batch: int = 20_000, per_image: bool = False, **model_kwargs) -> dict:
    """ELBO and its terms, KL per latent dimension and, with `iw_samples` > 0, the IW estimate of NLL.

    Returns means over the data in nats: ``elbo_nats`` (≤ log p(x), higher is better), ``recon_nats``
    (−E_q log p(x|z)), ``kl_nats``, ``kl_per_dim`` (list), ``nll_nats`` (−log p(x) estimated with
    ``iw_samples`` samples; lower is better) and ``bits_per_dim`` (from the NLL, else from the ELBO).
    At most `iw_batch` images are decoded at once. The means are over the fixed test images of `data`
    (:func:`evaluation_images`); the samples are drawn with `seed` (the images do not depend on it).
    `model_kwargs` are passed to ``elbo_terms`` and ``log_importance_weights``, e.g. ``groups=g`` to
    evaluate the model that decodes only its first g latent groups (see :func:`prefix_curve`). With
    `per_image`, also each image's ``elbo_nats_per_image`` (and ``nll_nats_per_image``), lists in the order
    of the images: what :func:`c2f.stats.compare` needs to count the test images as a source of noise.
    """
    was_training = model.training
    model.eval()
    data = evaluation_images(data)
    sums = {"elbo": 0.0, "log_px": 0.0, "kl": 0.0, "nll": 0.0}
    kl_dims = 0.0
    images: dict[str, list] = {"elbo": [], "nll": []}
    devices = [data.x.device] if data.x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # seeded here, and the caller's random state left alone
        torch.manual_seed(seed)
        for x, _ in batches(data, batch_size, shuffle=False):
            t = model.elbo_terms(x, **model_kwargs)
            for key in ("elbo", "log_px", "kl"):
                sums[key] += getattr(t, key).sum().item()
            kl_dims = kl_dims + t.kl_dims.sum(0)
            images["elbo"].append(t.elbo)
            if iw_samples > 0:
                chunk = samples_per_call(model, iw_batch, x.shape[0])
                log_px = iw_log_likelihood(model, x, iw_samples, chunk, **model_kwargs)
                sums["nll"] -= log_px.sum().item()
                images["nll"].append(-log_px)
    model.train(was_training)
    n, pixels = len(data), math.prod(data.image_shape)
    out = {
        "elbo_nats": sums["elbo"] / n,
        "recon_nats": -sums["log_px"] / n,
        "kl_nats": sums["kl"] / n,
        "kl_per_dim": (kl_dims / n).tolist(),
    }
    if iw_samples > 0:
        out["nll_nats"] = sums["nll"] / n
    out["bits_per_dim"] = out.get("nll_nats", -out["elbo_nats"]) / (pixels * math.log(2))
    if per_image:
        out.update({f"{k}_nats_per_image": torch.cat(v).double().tolist() for k, v in images.items() if v})
    return out


@torch.no_grad()
def prefix_curve(model, data: ImageSet, *, iw_samples: int = 0, seed: int = 0, batch_size: int = 500,
                 iw_batch: int = 20_000, per_image: bool = False) -> list[dict]:
    """:func:`evaluate` for every prefix: entry g−1 is the model that decodes latent groups 1..g only.

    The model must have ``prefix_elbo_terms(x)`` and ``prefix_log_importance_weights(x, k)``: every prefix
    is scored on the same posterior samples, drawn in one pass (the last prefix's numbers are those of
    ``evaluate(model, data)`` with the same seed), so the curve repeats and costs one evaluation. With
    `per_image`, each entry also has :func:`evaluate`'s per-image lists.
    """
    was_training = model.training
    model.eval()
    data = evaluation_images(data)
    sums = {"elbo": 0.0, "log_px": 0.0, "kl": 0.0, "nll": 0.0}
    kl_dims = 0.0
    images = {"elbo": [], "nll": []}  # [G, B] per batch
    devices = [data.x.device] if data.x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for x, _ in batches(data, batch_size, shuffle=False):
            terms = model.prefix_elbo_terms(x)
            for key in ("elbo", "log_px", "kl"):
                sums[key] = sums[key] + torch.stack([getattr(t, key).sum() for t in terms]).double()
            kl_dims = kl_dims + torch.stack([t.kl_dims.sum(0) for t in terms])
            images["elbo"].append(torch.stack([t.elbo for t in terms]))
            if iw_samples > 0:
                chunk = samples_per_call(model, iw_batch, x.shape[0])
                logw = torch.cat([model.prefix_log_importance_weights(x, min(chunk, iw_samples - i))
                                  for i in range(0, iw_samples, chunk)], 1)
                log_px = torch.logsumexp(logw.float(), 1) - math.log(iw_samples)
                images["nll"].append(-log_px)
                sums["nll"] = sums["nll"] - log_px.sum(-1).double()
    model.train(was_training)
    n, pixels = len(data), math.prod(data.image_shape)
    curve = []
    for g in range(len(sums["elbo"])):
        out = {"elbo_nats": sums["elbo"][g].item() / n, "recon_nats": -sums["log_px"][g].item() / n,
               "kl_nats": sums["kl"][g].item() / n, "kl_per_dim": (kl_dims[g] / n).tolist()}
        if iw_samples > 0:
            out["nll_nats"] = sums["nll"][g].item() / n
        out["bits_per_dim"] = out.get("nll_nats", -out["elbo_nats"]) / (pixels * math.log(2))
        if per_image:
            out.update({f"{k}_nats_per_image": torch.cat(v, 1)[g].tolist() for k, v in images.items() if v})
        curve.append(out)
    return curve


def evaluate_prefixes(model, data: ImageSet, *, iw_samples: int = 0, seed: int = 0, per_image: bool = False) -> dict:
    """The metrics of a model with G ordered latent groups: ``test_elbo_nats@g`` and (with `iw_samples` =
    K > 0) the importance-sampled ``test_nll_nats@g`` for every prefix g, the full model's
    ``test_elbo_nats``, ``test_recon_nats``, ``test_kl_nats`` and ``test_nll_nats``, and ``kl_group_g`` (the
    KL of each group, nats). With `per_image`, every image's values too (``test_elbo_nats@g_per_image`` ...)."""
    curve = prefix_curve(model, data, iw_samples=iw_samples, seed=seed, per_image=per_image)
    full = curve[model.default_groups - 1]  # the same evaluation as without ``groups``: same seed, same prefix
    out = {f"test_elbo_nats@{g}": c["elbo_nats"] for g, c in enumerate(curve, 1)}
    if iw_samples > 0:
        out.update({f"test_nll_nats@{g}": c["nll_nats"] for g, c in enumerate(curve, 1)})
    out.update({f"test_{k}": full[k] for k in ("elbo_nats", "recon_nats", "kl_nats", "nll_nats") if k in full})
    for k in [k for k in curve[0] if k.endswith("_per_image")]:
        out.update({f"test_{k.removesuffix('_per_image')}@{g}_per_image": c[k] for g, c in enumerate(curve, 1)})
        out[f"test_{k}"] = full[k]
    kl_groups = model.kl_groups(torch.tensor(full["kl_per_dim"]))
    out.update({f"kl_group_{g}": v for g, v in enumerate(kl_groups.tolist(), 1)})
    return out


def _prior_completed_terms(model, x, kept: set, k: int):
    """k samples of z ~ Π_{i∈kept} q(z_i|x) Π_{i∉kept} p(z_i): log p(x|z), the KL of the kept groups (closed
    form) and log p(z_kept) − log q(z_kept|x), each [k, B]."""
    xk = x.unsqueeze(0).expand(k, *x.shape).reshape(k * x.shape[0], *x.shape[1:])
    zs, log_ratio, kl = [], 0.0, 0.0
    for i, q in enumerate(model.group_posteriors(xk)):
        prior = standard_normal(q.mean.shape, q.mean.device)
        if i in kept:
            z = q.rsample()
            log_ratio = log_ratio + prior.log_prob(z) - q.log_prob(z)
            kl = kl + torch.distributions.kl_divergence(q, prior)
        else:
            z = prior.sample()
        zs.append(z)
    log_px = model.likelihood(model.decode_logits(zs)).log_prob(xk)
    return [(t + torch.zeros_like(log_px)).view(k, x.shape[0]) for t in (log_px, kl, log_ratio)]


@torch.no_grad()
def prior_completed_curve(model, data: ImageSet, order, *, iw_samples: int = 0, seed: int = 0,
                          batch_size: int = 500, iw_batch: int = 20_000, per_image: bool = False) -> list[dict]:
    """For g = 1..G, the bound on log p(x) of the *full* model when the groups ``order[:g]`` are inferred,
    q(z_i | x), and every other group is drawn from its prior: q'(z | x) = Π_{i∈S} q(z_i | x) Π_{i∉S} p(z_i).

    It is a valid ELBO of the full model for every g (the decoder always sees all groups; the KL is paid for
    the inferred ones only), so it is the fair prefix curve of a jointly trained model. With `iw_samples` =
    K > 0 also the importance-sampled NLL under q'. Needs a model whose group posteriors do not depend on
    each other (``group_posteriors(x)``). Entry g−1 has ``elbo_nats``, ``kl_nats`` (and ``nll_nats``): means
    over the fixed test images of `data` (:func:`evaluation_images`), the samples drawn with `seed` (with
    `per_image`, also ``elbo_nats_per_image``)."""
    was_training = model.training
    model.eval()
    data = evaluation_images(data)
    order = list(order)
    sums = [{"elbo": 0.0, "kl": 0.0, "nll": 0.0} for _ in order]
    images = [[] for _ in order]
    devices = [data.x.device] if data.x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for x, _ in batches(data, batch_size, shuffle=False):
            chunk = samples_per_call(model, iw_batch, x.shape[0])
            for g, total in enumerate(sums, 1):
                kept = set(order[:g])
                log_px, kl, _ = _prior_completed_terms(model, x, kept, 1)
                total["elbo"] += (log_px - kl).sum().item()
                images[g - 1].append((log_px - kl).view(-1))
                total["kl"] += kl.sum().item()
                if iw_samples > 0:
                    logw = torch.cat([sum(_prior_completed_terms(model, x, kept, min(chunk, iw_samples - i))[::2])
                                      for i in range(0, iw_samples, chunk)])
                    total["nll"] -= (torch.logsumexp(logw, 0) - math.log(iw_samples)).sum().item()
    model.train(was_training)
    n = len(data)
    out = [{"elbo_nats": s["elbo"] / n, "kl_nats": s["kl"] / n} for s in sums]
    if iw_samples > 0:
        for o, s in zip(out, sums):
            o["nll_nats"] = s["nll"] / n
    if per_image:
        for o, v in zip(out, images):
            o["elbo_nats_per_image"] = torch.cat(v).tolist()
    return out


@torch.no_grad()
def marginal_bernoulli_log_likelihood(train: ImageSet, test: ImageSet) -> float:
    """The model with no latents: every pixel an independent Bernoulli whose probability is its mean over
    the training images (Laplace-smoothed, (Σx + 1) / (N + 2), so no pixel has probability 0 or 1). Returns
    the mean log p(x) in nats on the fixed test images of `test` (:func:`evaluation_images`): an exact
    likelihood, to compare with ELBOs and NLLs."""
    probs = (train.x.double().sum(0) + 1) / (len(train) + 2)
    x = evaluation_images(test).x.double()
    return torch.distributions.Bernoulli(probs=probs).log_prob(x).flatten(1).sum(-1).mean().item()


@torch.no_grad()
def latent_means(model, data: ImageSet, *, batch_size: int = 1000) -> torch.Tensor:
    """E_q[z | x] for every image of the fixed test images of `data` (:func:`evaluation_images`): [N, D]."""
    was_training = model.training
    model.eval()
    data = evaluation_images(data)
    means = torch.cat([model.latent_means(x) for x, _ in batches(data, batch_size, shuffle=False)])
    model.train(was_training)
    return means


def active_units(means: torch.Tensor, threshold: float = 0.01) -> tuple[int, torch.Tensor]:
    """Burda et al.'s criterion: unit u is active when Cov_x(E_q[z_u | x]) > `threshold`.

    Takes the posterior means [N, D]; returns the count and the per-unit variances.
    """
    variances = means.float().var(dim=0)
    return int((variances > threshold).sum()), variances


def kl_active_units(kl_per_dim, threshold: float = 0.1) -> int:
    """The per-unit KL criterion: unit u is active when its mean KL(q(z_u | x) || p(z_u)) over the data
    exceeds `threshold` nats. Unlike :func:`active_units` it does not count a unit whose posterior mean
    varies a little while its posterior stays on the prior (a unit that carries almost no information)."""
    return int((torch.as_tensor(kl_per_dim) > threshold).sum())


@torch.no_grad()
def class_change_rate(classifier, before: torch.Tensor, after: torch.Tensor) -> float:
    """The fraction of images whose predicted class differs between `before` and `after` (for example a
    reconstruction and the same image decoded with one latent layer redrawn), under `classifier`."""
    return (classifier.predict(before) != classifier.predict(after)).float().mean().item()


@torch.no_grad()
def class_kept(model, classifier, *, n_groups: int = 8, group: int = 5, seed: int = 0) -> dict:
    """What decides the class of a sample from a model with a latent z ~ N(0, I) and a stochastic decoder
    (``model.generate(z, noise)``, ``model.cfg.latent_dim``): `n_groups` groups of `group` samples that share
    one z and redraw the uniforms that decide the pixels, and `n_groups` groups that share one noise field and
    redraw z. ``class_kept_fixed_z`` / ``class_kept_fixed_noise``: the share of samples 2..m of a group that
    `classifier` puts in the class of the group's sample 1; ``class_chance``: Σ_c p_c² of the class mix p of all
    these samples, the agreement of two independent samples (the level both shares reach when neither z nor
    the noise decides the class). A model without a latent (``latent_dim`` 0)
    samples independently for both (``model.sample``): the first is then the agreement of independent samples,
    the chance level of the model's class mix."""
    gen = torch.Generator().manual_seed(10_000 + seed)
    d, n, shape = model.cfg.latent_dim, n_groups * group, (1, *model.cfg.image_shape[1:])
    u = torch.cat([torch.rand(n, *shape, generator=gen),  # noise redrawn per sample, then one field per group
                   torch.rand(n_groups, *shape, generator=gen).repeat_interleave(group, 0)]).to(model.device)
    if d:
        z = torch.cat([torch.randn(n_groups, d, generator=gen).repeat_interleave(group, 0),
                       torch.randn(n, d, generator=gen)]).to(model.device)
        x = model.generate(z, noise=u)
    else:
        x = model.sample(2 * n, noise=torch.rand(2 * n, *shape, generator=gen).to(model.device))
    c = classifier.predict(x).view(2, n_groups, group)
    kept = (c[:, :, 1:] == c[:, :, :1]).float().mean((1, 2))
    mix = torch.bincount(c.flatten().cpu()).double() / c.numel()
    return {"class_kept_fixed_z": kept[0].item(), "class_kept_fixed_noise": kept[1].item(),
            "class_chance": (mix ** 2).sum().item()}


def higher_is_better(name: str) -> bool | None:
    """Whether a larger value of metric `name` is better (ELBO, accuracy, PSNR ...), worse (NLL, bits,
    errors, losses), or neither (KL, counts of active units): True, False or None."""
    direction = None
    for word in re.split(r"[^a-z0-9]+", name.lower()):  # the last word with a direction names the quantity
        if word in _LOWER_IS_BETTER:
            direction = False
        elif word in _HIGHER_IS_BETTER:
            direction = True
    return direction


# words of a metric's name that say which way is better: ``recon_class_accuracy`` is an accuracy (of the
# reconstructions), ``test_elbo_bits_per_dim`` is a number of bits
_LOWER_IS_BETTER = {"nll", "bits", "error", "loss", "recon", "l1", "time"}
_HIGHER_IS_BETTER = {"elbo", "accuracy", "likelihood", "psnr", "ssim", "iou", "success"}


def summarise(runs: list[dict]) -> dict:
    """Summary over runs (e.g. seeds) of each scalar metric: the mean ``name`` and, with two runs or more,
    the standard deviation ``name_std`` and, for metrics with a direction (:func:`higher_is_better`), the
    worst run ``name_worst``. A single run has no spread to report, so it gets neither."""
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    out = {}
    for k in keys:
        values = torch.tensor([float(r[k]) for r in runs], dtype=torch.float64)
        out[k] = values.mean().item()
        if len(runs) > 1:
            out[f"{k}_std"] = values.std(unbiased=True).item()
            better = higher_is_better(k)
            if better is not None:
                out[f"{k}_worst"] = (values.min() if better else values.max()).item()
    return out


def describe(summary: dict, key: str, digits: int = 2, scale: float = 1.0, unit: str = "") -> str:
    """``mean ± std (worst w)`` of one summarised metric as text (just the mean for a single run)."""
    text = f"{scale * summary[key]:.{digits}f}"
    if f"{key}_std" in summary:
        text += f" ± {scale * summary[key + '_std']:.{digits}f}"
    text += unit
    if f"{key}_worst" in summary:
        text += f" (worst {scale * summary[key + '_worst']:.{digits}f}{unit})"
    return text


# --- clustering -----------------------------------------------------------------------------------------


@torch.no_grad()
def cluster_assignments(model, data: ImageSet, *, batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's cluster (``model.cluster(x)``, e.g. argmax q(z|x)) of every image of the fixed test images
    of `data` (:func:`evaluation_images`), and the true labels: two tensors [N] on the CPU."""
    was_training = model.training
    model.eval()
    data = evaluation_images(data)
    clusters = torch.cat([model.cluster(x).cpu() for x, _ in batches(data, batch_size, shuffle=False)])
    model.train(was_training)
    return clusters, data.y.cpu()


def contingency(clusters: torch.Tensor, labels: torch.Tensor, num_clusters: int | None = None,
                num_classes: int | None = None) -> torch.Tensor:
    """A[k, c] = number of items in cluster k with label c: [K, C] (int64)."""
    clusters, labels = torch.as_tensor(clusters).long().cpu(), torch.as_tensor(labels).long().cpu()
    k = num_clusters or int(clusters.max()) + 1
    c = num_classes or int(labels.max()) + 1
    return torch.bincount(clusters * c + labels, minlength=k * c).view(k, c)


def cluster_accuracy(clusters: torch.Tensor, labels: torch.Tensor, num_clusters: int | None = None, *,
                     matched_on: tuple[torch.Tensor, torch.Tensor] | None = None) -> float:
    """Clustering accuracy with the best one-to-one map of clusters to classes, found by the Hungarian
    method (Kuhn 1955; scipy's linear_sum_assignment on the contingency table). With more clusters than
    classes, the items of clusters left unmatched count as errors: a strict score.

    By default the map is chosen on the scored items themselves. With `matched_on` = (clusters, labels) of
    other items (e.g. the training split) it is chosen on those and then applied here, so no scored label
    helps choose it: the honest choice when there are only a few scored items per class."""
    from scipy.optimize import linear_sum_assignment

    clusters, labels = torch.as_tensor(clusters).long().cpu(), torch.as_tensor(labels).long().cpu()
    fit_clusters, fit_labels = (clusters, labels) if matched_on is None else \
        (torch.as_tensor(t).long().cpu() for t in matched_on)
    classes, index = torch.unique(torch.cat([fit_labels, labels]), return_inverse=True)  # 2, 6, 9 -> 0, 1, 2
    fit_index, index = index[:len(fit_labels)], index[len(fit_labels):]
    k = num_clusters or int(max(clusters.max(), fit_clusters.max())) + 1
    rows, cols = linear_sum_assignment(-contingency(fit_clusters, fit_index, k, len(classes)).numpy())
    class_of = torch.full((k,), -1, dtype=torch.long)
    class_of[torch.as_tensor(rows)] = torch.as_tensor(cols)
    return float((class_of[clusters] == index).double().mean())


def many_to_one_accuracy(clusters: torch.Tensor, labels: torch.Tensor, num_clusters: int | None = None) -> float:
    """Accuracy when every cluster is labelled with its majority class (several clusters may share a class).
    Lenient: it can only grow with the number of clusters (one cluster per item scores 1), so report it
    next to :func:`cluster_accuracy`, labelled as many-to-one."""
    labels = torch.as_tensor(labels).long().cpu()
    _, labels = torch.unique(labels, return_inverse=True)
    table = contingency(clusters, labels, num_clusters)
    return float(table.max(1).values.sum() / table.sum())


def effect_consistency(before: torch.Tensor, after: torch.Tensor) -> float:
    """How alike the effect of one change is across images: the mean cosine similarity, over all pairs of
    images, of the pixel changes after − before ([N, ...] each). 1: the same change everywhere; near 0:
    unrelated changes."""
    d = (after - before).flatten(1).double()
    d = d / d.norm(dim=1, keepdim=True).clamp_min(1e-12)
    sim = d @ d.T
    n = len(d)
    return float((sim.sum() - sim.diagonal().sum()) / (n * (n - 1)))


@torch.no_grad()
def layer_report(model, data: ImageSet, *, iw_samples: int = 0, seed: int = 0, batch_size: int = 500,
                 threshold: float = 0.01, kl_threshold: float = 0.1, per_image: bool = False) -> dict:
    """:func:`evaluate` plus, for a model with latent layers (``model.layer_sizes``, ``kl_dims`` in layer
    order), the KL of each layer ``kl_layer_<l>`` and its active units ``active_units_layer_<l>`` (layer 1
    nearest the image), and the totals ``active_units``; ``kl_active_units_layer_<l>`` and ``kl_active_units``
    count the units by their KL instead (:func:`kl_active_units`, `kl_threshold` nats). Scalar entries only,
    unless `per_image` adds :func:`evaluate`'s per-image lists."""
    out = evaluate(model, data, iw_samples=iw_samples, seed=seed, batch_size=batch_size, per_image=per_image)
    kl_dims = torch.tensor(out.pop("kl_per_dim"))
    _, variances = active_units(latent_means(model, data), threshold)
    sizes = list(model.layer_sizes)
    for l, (kl, var) in enumerate(zip(kl_dims.split(sizes), variances.cpu().split(sizes)), 1):
        out[f"kl_layer_{l}"] = kl.sum().item()
        out[f"active_units_layer_{l}"] = int((var > threshold).sum())
        out[f"kl_active_units_layer_{l}"] = kl_active_units(kl, kl_threshold)
    out["active_units"] = int((variances > threshold).sum())
    out["kl_active_units"] = kl_active_units(kl_dims, kl_threshold)
    return out
