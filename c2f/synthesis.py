"""Chapter 08's coarse-to-fine measure: every model's code as an ordered list of parts, and what a prefix holds.

Each model family declares how it orders its code (``model.code_order(kl_per_dim)``, the
:class:`c2f.objectives.CoarseToFine` protocol, a :class:`c2f.objectives.CodeOrder`): the groups of a
progressive VAE, the iterations of Conv-DRAW, the latent layers of a hierarchy from the top down, the class
before the transformation in the D-VAE-ST. A flat latent (VAE, PixelVAE) has no order of its own; its units
are ordered by their test KL, largest first, in parts whose cumulative sizes are 1, 2, 4, ... units
(:func:`c2f.objectives.units_by_kl`).

The headline measure, :func:`decoded_measures`: for every prefix g = 0..G, decode from a *sample* of the
prefix, the rest of the code drawn from the (conditional) prior (:attr:`CodeOrder.sample`, one rule for every
model), and classify the decoded image with the book's MNIST classifier; the accuracy is set against the
prefix's rate (its test KL), which bounds it through Fano's inequality (:func:`fano_accuracy_bound`). The
curve is summarised without steps: interpolated in log(1 + R) (:func:`accuracy_at`), its area up to a rate
(:func:`accuracy_area`) and the rate at which it reaches an accuracy (:func:`rate_to_accuracy`).

The second view, :func:`prefix_measures`: a linear probe (:func:`probe`) on a sample of the prefix's code,
beside the prefix's size and a dimension-matched control.
"""

from __future__ import annotations

import torch

from c2f.data import ImageSet, batches
from c2f.evaluate import evaluation_images, latent_means
from c2f.objectives import CodeOrder


# the families chapter 08 compares: name -> (the chapter that introduces it, how its code is ordered)
FAMILIES = {
    "vae": ("01", "units by KL"), "convdraw": ("03", "iterations"), "multiple": ("02", "groups"),
    "single": ("02", "groups"), "rnn": ("02", "groups"), "quotient": ("02", "groups"),
    "hvae": ("04", "layers, top first"), "lvae": ("04", "layers, top first"), "vlae": ("04", "layers, top first"),
    "pixelvae": ("06", "units by KL"), "dvae_st": ("05", "class, then transformation"),
}


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
                    batch_size: int = 500, samples: bool = True, seed: int = 0) -> list[dict]:
    """For g = 1..len(order): ``kl_nats`` (the prefix's test KL), ``recon_nats`` (−E log p(x | prefix) on the
    fixed test images of `test`, :func:`c2f.evaluate.evaluation_images`), ``probe_accuracy`` (a :func:`probe`
    fitted on the prefix codes of `probe_train`, scored on those of `test`), ``features`` (the prefix's number
    of features) and ``control_accuracy`` (the same probe on a random Gaussian projection of the *whole* code
    to that many features: what a code of that size gives without the model's order). With `samples` (and
    :attr:`CodeOrder.code_sample`) the codes are one draw of q(· | x) per image, whose information about the
    image is bounded by the rate; otherwise the posterior means."""
    was_training = model.training
    model.eval()
    kl = torch.as_tensor(kl_per_dim, dtype=torch.float64)
    fixed = evaluation_images(test)
    sums = torch.zeros(len(order), dtype=torch.float64)
    for x, _ in batches(fixed, batch_size, shuffle=False):
        for g in range(1, len(order) + 1):
            sums[g - 1] += order.log_px(x, g).double().sum().cpu()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if samples and order.code_sample is not None:
            codes_train, codes_test = (torch.cat([order.code_sample(x).cpu() for x, _ in
                                                  batches(evaluation_images(d), batch_size, shuffle=False)])
                                       for d in (probe_train, test))
        else:
            codes_train, codes_test = (latent_means(model, d).cpu() for d in (probe_train, test))
        projection = torch.randn(codes_train.shape[1], codes_train.shape[1], dtype=torch.float64)
    model.train(was_training)
    out, cols = [], []
    for g in range(1, len(order) + 1):
        cols = cols + order.features[g - 1]
        proj = projection[:, :len(cols)]
        out.append({"kl_nats": float(kl[[c for p in order.kl[:g] for c in p]].sum()),
                    "recon_nats": float(-sums[g - 1] / len(fixed)), "features": len(cols),
                    "probe_accuracy": probe(codes_train[:, cols], probe_train.y, codes_test[:, cols], fixed.y),
                    "control_accuracy": probe(codes_train.double() @ proj, probe_train.y,
                                              codes_test.double() @ proj, fixed.y)})
    return out


# --- the headline measure: the class of an image decoded from a sample of the prefix --------------------

def fano_accuracy_bound(rate: float, classes: int = 10) -> float:
    """The highest class accuracy Fano's inequality allows from a code that carries at most `rate` nats about
    a class uniform over `classes`: with H(Y | Z) ≥ log K − I and H(Y | Z) ≤ h(e) + e log(K − 1) for the error
    e, the accuracy 1 − e is at most 1 − e*, e* the error at which h(e) + e log(K − 1) = log K − I (1 from
    I = log K on, 1/K at I = 0)."""
    import math

    from scipy.optimize import brentq

    gap = math.log(classes) - max(float(rate), 0.0)
    if gap <= 0:
        return 1.0
    top = (classes - 1) / classes  # h(e) + e log(K − 1) rises from 0 at e = 0 to log K here

    def f(e):
        h = 0.0 if e <= 0 else -e * math.log(e) - (1 - e) * math.log1p(-e)
        return h + e * math.log(classes - 1) - gap
    return 1.0 - (top if f(top) <= 0 else brentq(f, 0.0, top, xtol=1e-12))


def fano_excess(accuracy: float, rate: float, n: int, *, classes: int = 10, z: float = 3.0) -> float:
    """How far a measured accuracy lies above the Fano bound of its rate, beyond `z` binomial standard errors
    of an accuracy measured on `n` images (the bound holds for the population; a measure on n images scatters
    around it): > 0 means the measure breaks the bound."""
    bound = fano_accuracy_bound(rate, classes)
    return accuracy - bound - z * (bound * (1 - bound) / max(n, 1)) ** 0.5


@torch.no_grad()
def decoded_measures(model, order: CodeOrder, kl_per_dim, test: ImageSet, classifier, *, draws: int = 3,
                     seed: int = 0, pixel_images: int = 100, batch_size: int = 500) -> list[dict]:
    """The headline measure, for g = 0..len(order) (g = 0: no code, a sample of the model): decode from a
    *sample* of the first g parts, the rest drawn from the (conditional) prior (:attr:`CodeOrder.sample`, one
    rule for every model), `draws` times, on the fixed test images of `test`; ``decoded_accuracy`` is the
    share of decoded images that `classifier` assigns to the test image's class, ``recon_nats`` the mean
    −log p(x | that code) and ``kl_nats`` the prefix's test KL (its rate, 0 for g = 0), ``images`` the number
    of images the accuracy is over (only the first `pixel_images` where the decoder draws pixel by pixel; with
    none, ``decoded_accuracy`` is None).
    The draws use their own random stream (`seed`), so the measure does not move the caller's."""
    was_training = model.training
    model.eval()
    kl = torch.as_tensor(kl_per_dim, dtype=torch.float64)
    fixed = evaluation_images(test)
    n_img = min(len(fixed), pixel_images) if order.pixel_by_pixel else len(fixed)  # 0: accuracy not measured
    out = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for g in range(len(order) + 1):
            log_px, hits = 0.0, 0.0
            for _ in range(draws):
                for i, (x, y) in enumerate(batches(fixed, batch_size, shuffle=False)):
                    start = i * batch_size
                    image = start < n_img
                    lp, img = order.sample(x, g, image)
                    log_px += float(lp.double().sum())
                    if image:
                        keep = min(len(x), n_img - start)
                        hits += float((classifier.predict(img[:keep].float()) == y[:keep]).sum())
            out.append({"kl_nats": float(kl[[c for p in order.kl[:g] for c in p]].sum()) if g else 0.0,
                        "recon_nats": -log_px / (draws * len(fixed)),
                        "decoded_accuracy": hits / (draws * n_img) if n_img else None,
                        "images": n_img})
    model.train(was_training)
    return out


def _log_rate(rate):
    """The rate axis of the summaries: log(1 + R), linear below about a nat and logarithmic above."""
    import numpy as np
    return np.log1p(np.maximum(np.asarray(rate, dtype=np.float64), 0.0))


def accuracy_at(curve: list[dict], rate: float, key: str = "decoded_accuracy") -> float:
    """The accuracy of `curve` (points g = 0..G of :func:`decoded_measures`) at `rate` nats, interpolated
    linearly in log(1 + R) between the points; beyond the whole code's rate the whole code's accuracy (the
    model has nothing more to spend). Not a step function of the rate."""
    import numpy as np
    r, a = _log_rate([c["kl_nats"] for c in curve]), np.array([c[key] for c in curve])
    r = np.maximum.accumulate(r)  # cumulative KLs: non-decreasing up to rounding
    return float(np.interp(_log_rate(rate), r, a))


def accuracy_area(curve: list[dict], rate: float, key: str = "decoded_accuracy", points: int = 200) -> float:
    """The mean of :func:`accuracy_at` over rates 0..`rate`, uniformly in log(1 + R): the area under the
    accuracy–rate curve up to `rate`, as an accuracy."""
    import numpy as np
    grid = np.expm1(np.linspace(0.0, float(_log_rate(rate)), points))
    return float(np.mean([accuracy_at(curve, r, key) for r in grid]))


def rate_to_accuracy(curve: list[dict], accuracy: float, key: str = "decoded_accuracy") -> float | None:
    """The smallest rate (nats) at which the interpolated curve (:func:`accuracy_at`) reaches `accuracy`;
    None when it never does."""
    import numpy as np
    r = np.maximum.accumulate(_log_rate([c["kl_nats"] for c in curve]))
    a = [c[key] for c in curve]
    if a[0] >= accuracy:
        return 0.0
    for i in range(1, len(a)):
        if a[i] >= accuracy:
            t = (accuracy - a[i - 1]) / (a[i] - a[i - 1])
            return float(np.expm1(r[i - 1] + t * (r[i] - r[i - 1])))
    return None


def shared_budget(cfg, train: ImageSet, stages: int):
    """The training configuration and images of a model trained in `stages` stages, so that all its stages
    together take as many optimizer steps as one model trained by `cfg` on `train`: each stage one pass over the
    first ⌈N · epochs / stages⌉ images, its KL warm-up the same fraction of that pass. Returns (cfg, images),
    images None (the experiment's) for a model trained in one stage."""
    import math
    from dataclasses import replace

    if stages <= 1:
        return cfg, None
    n = max(1, math.ceil(len(train) * cfg.epochs / stages))
    images = train.subset(min(n, len(train)), seed=None)  # the first n, as every stage of the chapter sees them
    return replace(cfg, epochs=1, kl_warmup_epochs=cfg.kl_warmup_epochs / cfg.epochs), images
