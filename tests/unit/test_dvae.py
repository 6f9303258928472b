"""D-VAE and D-VAE-ST: shapes, gradients with every estimator, exact ELBO / likelihood by enumeration, the
spatial transformer, training lowers the loss, and the clustering metrics (Hungarian and many-to-one)."""

from __future__ import annotations

import math

import pytest
import torch

from c2f.estimators import ESTIMATORS
from c2f.evaluate import cluster_accuracy, cluster_assignments, contingency, evaluate, many_to_one_accuracy
from c2f.models import DVAE, DVAEConfig
from c2f.train import TrainConfig, fit

B, K = 6, 4


def small(transform: bool, estimator: str = "exact", **kw) -> DVAE:
    torch.manual_seed(0)
    base = dict(num_classes=K, estimator=estimator, transform=transform, hidden=(16,), decoder_hidden=(16,),
                baseline_hidden=(8,), channels=(4, 8), conv_features=16)
    return DVAE(DVAEConfig(**{**base, **kw}))


def binary_batch(n: int = B, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.full((n, 1, 28, 28), 0.3), generator=g)


@pytest.mark.parametrize("transform", [False, True], ids=["dvae", "dvae_st"])
@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_shapes(transform, arch):
    model = small(transform, arch=arch)
    x = binary_batch()
    assert model.class_logits(x).shape == (B, K)
    assert model.prototypes().shape == (K, 1, 28, 28)
    t = model.elbo_terms(x)
    j = 2 if transform else 1
    assert t.log_px.shape == (B,) and t.kl.shape == (B,) and t.kl_dims.shape == (B, j)
    torch.testing.assert_close(t.elbo, t.log_px - t.kl)
    assert (t.kl_dims >= -1e-6).all() and (t.kl_dims[:, 0] <= math.log(K) + 1e-5).all()
    assert model.log_importance_weights(x, 3).shape == (3, B)
    assert model.latent_means(x).shape == (B, K + (6 if transform else 0))
    assert model.cluster(x).shape == (B,)
    model.eval()
    assert model.reconstruct(x).shape == x.shape and model.sample(5).shape == (5, 1, 28, 28)


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("transform", [False, True], ids=["dvae", "dvae_st"])
def test_every_parameter_gets_a_finite_gradient(estimator, transform):
    """loss(x).backward() reaches the encoder, the prototype network, the localiser (ST) and the
    estimator's own parameters, with finite values."""
    model = small(transform, estimator, prototype_init="random")
    x = binary_batch(16, seed=1)
    loss, scalars = model.loss(x)
    assert loss.shape == () and torch.isfinite(loss)
    loss.backward()
    assert model.class_head.weight.grad.abs().sum() > 0, "the encoder got no gradient"
    assert model.prototype_net[-1].weight.grad.abs().sum() > 0
    if transform:
        assert model.transform_head.linear.weight.grad.abs().sum() > 0
    for name, p in model.named_parameters():
        assert p.grad is None or torch.isfinite(p.grad).all(), name
    if estimator in ("nvil", "rebar", "relax"):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.estimator.parameters())
    assert {"elbo", "recon", "kl"} <= scalars.keys()


def test_transform_prior_and_initial_posterior():
    """q(t | x) equals p(t) = N(identity, σ₀²) at initialisation, so the transformation KL starts at 0."""
    model = small(True, transform_prior_std=0.1)
    x = binary_batch()
    q = model.transform_posterior(x)
    torch.testing.assert_close(q.mean, torch.tensor([1.0, 0, 0, 0, 1, 0]).expand(B, 6))
    torch.testing.assert_close(q.stddev, torch.full((B, 6), 0.1))
    assert model.elbo_terms(x).kl_dims[:, 1].abs().max() < 1e-5


def test_identity_warp_is_the_identity_and_a_shift_moves_the_image():
    model = small(True)
    images = torch.zeros(2, 1, 28, 28)
    images[:, :, 10:14, 10:14] = 1.0
    identity = torch.tensor([1.0, 0, 0, 0, 1, 0]).expand(2, 6)
    torch.testing.assert_close(model.warp(images.unsqueeze(1), identity).squeeze(1), images)
    shift = identity.clone()
    shift[:, 2] = -2 * 4 / 28  # output x samples input x - 4 px: the square moves 4 px to the right
    moved = model.warp(images.unsqueeze(1), shift).squeeze(1)
    torch.testing.assert_close(moved[:, :, 10:14, 14:18], images[:, :, 10:14, 10:14])


def test_dvae_likelihood_is_exact():
    """For the D-VAE, log p(x) = log Σ_z p(z) p(x|z): every importance weight equals it, and the ELBO is
    below it by exactly KL(q(z|x) ‖ p(z|x))."""
    model = small(False).eval()
    x = binary_batch()
    with torch.no_grad():
        logw = model.log_importance_weights(x, 5)
        t = model.elbo_terms(x)
        codes = torch.eye(K)[:, None, :].expand(K, B, K)
        log_joint = model.decode(codes, model.components(None)).log_prob(x) - math.log(K)  # [K, B]
        log_px = torch.logsumexp(log_joint, 0)
        posterior = (log_joint - log_px).T.exp()
        q = model.class_logits(x).softmax(-1)
        gap = (q * (q.log() - posterior.clamp_min(1e-30).log())).sum(-1)
    torch.testing.assert_close(logw, log_px.expand(5, -1))
    torch.testing.assert_close(t.elbo, log_px - gap, atol=1e-3, rtol=1e-5)


def test_dvae_st_importance_weights_score_each_sample_of_its_own_image():
    """The k samples are scored in one batch of k·B images: row i, column b is the weight of sample i of
    image b, log p(x_b | t) + log p(t) − log q(t | x_b), as scoring that sample alone gives it."""
    model = small(True).eval()
    x = torch.cat([binary_batch(3, seed=2), torch.zeros(3, 1, 28, 28)])  # two kinds of image: a mix-up shows
    with torch.no_grad():
        torch.manual_seed(5)
        logw = model.log_importance_weights(x, 4)
        torch.manual_seed(5)
        q_t, p_t = model.transform_posterior(x), model.transform_prior(B)
        t = q_t.sample((4,))
        one_at_a_time = torch.stack([model.log_joint_over_classes(x, t[i]) + p_t.log_prob(t[i]) - q_t.log_prob(t[i])
                                     for i in range(4)])
    torch.testing.assert_close(logw, one_at_a_time)


def test_evaluate_bounds_the_images_the_dvae_st_decodes_at_once():
    """At most `iw_batch` images decoded at once: the D-VAE-ST decodes each image-sample once per class."""
    from c2f.evaluate import samples_per_call

    assert samples_per_call(small(True), 20_000, 500) == 20_000 // (500 * K)
    assert samples_per_call(small(False), 20_000, 500) == 40
    assert samples_per_call(small(True), 100, 500) == 1


def test_evaluate_runs_and_iw_bound_is_above_the_elbo():
    model = small(True).eval()
    from c2f.data import ImageSet

    data = ImageSet("toy", "test", binary_batch(20), torch.arange(20) % 3, "static")
    out = evaluate(model, data, iw_samples=10, batch_size=10)
    assert out["nll_nats"] <= -out["elbo_nats"] + 1e-3


def test_fit_lowers_the_loss_on_a_tiny_batch(tiny_images):
    """40 Adam steps on 64 images made of 4 random-pixel prototypes (D-VAE with RELAX, D-VAE-ST with the
    exact estimator): the loss falls by far more than noise (by > 100 nats per image)."""
    for transform, estimator in ((False, "relax"), (True, "exact")):
        model = small(transform, estimator, hidden=(32,))
        history = fit(model, tiny_images, TrainConfig(epochs=40, batch_size=64, lr=3e-3, seed=0))
        losses = history["epochs"]["loss"]
        first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
        assert last < first - 100, (transform, first, last)


def test_the_prototypes_are_seeded_from_the_first_batch():
    model = small(False, prototype_init="data")
    assert not bool(model.prototypes_initialised)
    x = binary_batch(32)
    model.loss(x)
    assert bool(model.prototypes_initialised)
    protos = model.prototypes()
    assert protos.std(0).mean() > 0.05  # distinct images, not one grey blob
    state = model.state_dict()
    assert "prototype_offset" in state and bool(state["prototypes_initialised"])


# --- clustering metrics -------------------------------------------------------------------------------


def test_hungarian_accuracy_of_a_permuted_labelling_is_one():
    labels = torch.tensor([2, 2, 6, 6, 6, 9, 9, 2, 9])
    relabel = {2: 1, 6: 2, 9: 0}
    clusters = torch.tensor([relabel[int(v)] for v in labels])
    assert cluster_accuracy(clusters, labels) == 1.0
    assert many_to_one_accuracy(clusters, labels) == 1.0


def test_hungarian_is_one_to_one_and_many_to_one_is_lenient():
    """Six items of two classes split into three clusters: cluster 0 = {a, a}, 1 = {a, b}, 2 = {b, b}.
    One-to-one: the best map uses two clusters (0->a, 2->b) and scores 4/6; many-to-one lets every cluster
    take its majority class and scores 5/6; one cluster per item would score 1."""
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    clusters = torch.tensor([0, 0, 1, 1, 2, 2])
    torch.testing.assert_close(contingency(clusters, labels), torch.tensor([[2, 0], [1, 1], [0, 2]]))
    assert cluster_accuracy(clusters, labels) == pytest.approx(4 / 6)
    assert many_to_one_accuracy(clusters, labels) == pytest.approx(5 / 6)
    assert many_to_one_accuracy(torch.arange(6), labels) == 1.0


def test_hungarian_beats_greedy_matching():
    """Cluster 0 holds 5 items of class 0 and 4 of class 1, cluster 1 holds 4 of class 0. Giving cluster 0
    its largest class first (greedy) scores 5/13; the optimal one-to-one map (0->1, 1->0) scores 8/13;
    many-to-one (both clusters -> class 0) scores 9/13."""
    labels = torch.tensor([0] * 5 + [1] * 4 + [0] * 4)
    clusters = torch.tensor([0] * 5 + [0] * 4 + [1] * 4)
    assert cluster_accuracy(clusters, labels) == pytest.approx(8 / 13)
    assert many_to_one_accuracy(clusters, labels) == pytest.approx(9 / 13)


def test_accuracy_matched_on_other_items_applies_their_map():
    """The map is chosen on the `matched_on` items (cluster 0 -> class 5, 1 -> class 7) and applied to the
    scored items, even where the scored items alone would prefer the swapped map (which scores 3/4 there):
    here it scores 1/4. A class seen only in the scored items cannot be matched."""
    fit = (torch.tensor([0, 0, 1, 1]), torch.tensor([5, 5, 7, 7]))
    clusters, labels = torch.tensor([1, 1, 0, 0]), torch.tensor([5, 5, 5, 7])
    assert cluster_accuracy(clusters, labels) == pytest.approx(3 / 4)
    assert cluster_accuracy(clusters, labels, matched_on=fit) == pytest.approx(1 / 4)
    assert cluster_accuracy(torch.tensor([0, 1]), torch.tensor([5, 8]), 2, matched_on=fit) == pytest.approx(1 / 2)


def test_cluster_assignments_of_a_model():
    from c2f.data import ImageSet

    model = small(False)
    data = ImageSet("toy", "test", binary_batch(12), torch.arange(12) % 3, "static")
    clusters, labels = cluster_assignments(model, data, batch_size=5)
    assert clusters.shape == labels.shape == (12,) and clusters.max() < K
