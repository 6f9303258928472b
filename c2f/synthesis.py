"""Chapter 08's coarse-to-fine measure: every model's code as an ordered list of parts, and what a prefix holds.

Each model family declares how it orders its code (``model.code_order(kl_per_dim)``, the
:class:`c2f.objectives.CoarseToFine` protocol, a :class:`c2f.objectives.CodeOrder`): the groups of a
progressive VAE, the iterations of Conv-DRAW, the latent layers of a hierarchy from the top down, the class
before the transformation in the D-VAE-ST. A flat latent (VAE, PixelVAE) has no order of its own; its units
are ordered by their KL, largest first (the most favourable order for it), in parts whose cumulative sizes are
1, 2, 4, ... units (:func:`c2f.objectives.units_by_kl`). :func:`prefix_measures` then gives, for every prefix g
(the first g parts):

* ``kl_nats``: the nats the prefix costs, the test KL of its parts (from :func:`c2f.evaluate.evaluate`);
* ``recon_nats``: −E log p(x | prefix), the image's log-likelihood under the decoder when the prefix is at its
  posterior mean and the rest of the code is completed the way the model completes a partial code (the
  (conditional) prior mean; the progressive VAEs leave later groups out, as they were trained to);
* ``probe_accuracy``: the test accuracy of a linear probe (:func:`probe`, scikit-learn's logistic regression)
  trained on the prefix's posterior means of training images, i.e. how much *class* information it holds in
  a linearly readable form.
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
