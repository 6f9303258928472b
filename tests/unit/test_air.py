"""AIR, Difference-AIR and Discrete AIR: the spatial transformer's crop and paste are inverse maps, the count
distribution, the ELBO with the count summed out against the training loss and the importance weights,
gradients for every estimator, a loss that decreases, and the scoring of detections against the truth."""

from __future__ import annotations

import math

import pytest
import torch

from c2f import scenes
from c2f.models.air import AIR, AIRConfig
from c2f.models.air import count_logits

B = 6


def small(**kw) -> AIR:
    torch.manual_seed(0)
    base = dict(image_shape=(1, 30, 30), window=12, scale_prior=2.5, z_what=4, num_classes=3, features=16,
                hidden=16, what_hidden=16, baseline_hidden=8)
    return AIR(AIRConfig(**{**base, **kw}))


def scenes_batch(n: int = B, canvas: int = 30, seed: int = 0) -> torch.Tensor:
    digits = torch.zeros(5, 1, 28, 28)
    digits[:, :, 8:20, 8:20] = 1.0
    spec = scenes.SceneSpec(n=n, counts=(0, 1, 2), canvas=canvas, digit_size=12, seed=seed)
    return torch.bernoulli(scenes.generate(spec, digits, torch.arange(5)).images.x * 0.9,
                           generator=torch.Generator().manual_seed(seed))


def test_paste_then_crop_returns_the_object_and_boxes_are_in_pixels():
    model = small(image_shape=(1, 50, 50), window=20)
    obj = torch.rand(2, 1, 20, 20)
    where = torch.tensor([[2.5, 0.0, 0.0], [2.5, -0.4, 0.4]])  # windows of 20 px on whole pixels
    canvas = model.paste(obj, where)
    torch.testing.assert_close(model.crop(canvas, where), obj)
    assert canvas[0].sum() == pytest.approx(obj[0].sum().item(), rel=1e-5)  # nothing lost or added
    torch.testing.assert_close(model.boxes(where), torch.tensor([[15.0, 15.0, 35.0, 35.0], [5.0, 25.0, 25.0, 45.0]]))
    assert canvas[1, 0, 25:45, 5:25].sum() == pytest.approx(obj[1].sum().item(), rel=1e-5)


def test_count_distribution_is_the_chain_of_presences():
    logits = torch.tensor([[0.3, -1.0, 2.0]])
    p = torch.sigmoid(logits)[0]
    expected = torch.stack([1 - p[0], p[0] * (1 - p[1]), p[0] * p[1] * (1 - p[2]), p[0] * p[1] * p[2]])
    torch.testing.assert_close(count_logits(logits).exp()[0], expected)
    rho = 0.01
    prior = small(pres_prior=rho, max_steps=3).count_prior(1, "cpu").probs[0]
    torch.testing.assert_close(prior, torch.tensor([1 - rho, rho * (1 - rho), rho**2 * (1 - rho), rho**3]))


@pytest.mark.parametrize("what", ["gaussian", "prototypes"])
def test_elbo_terms_equal_the_training_loss_with_the_exact_estimator(what):
    """With the exact count (and class) estimators the training loss is the negative ELBO, plus DAIR's
    marginal-KL regulariser when its weight is not zero."""
    model = small(what=what, class_marginal_weight=0.0).eval()
    x = scenes_batch()
    torch.manual_seed(1)
    terms = model.elbo_terms(x)
    assert terms.log_px.shape == (B,) and terms.kl_dims.shape == (B, 4)
    torch.manual_seed(1)
    loss, scalars = model.loss(x)
    assert loss.item() == pytest.approx(-terms.elbo.mean().item(), rel=1e-5)
    assert scalars["elbo"].item() == pytest.approx(terms.elbo.mean().item(), rel=1e-5)
    if what == "prototypes":
        model.cfg.class_marginal_weight = 30.0
        torch.manual_seed(1)
        loss, scalars = model.loss(x)
        assert scalars["marginal_kl"] > 0
        assert loss.item() == pytest.approx(-terms.elbo.mean().item() + 30.0 * scalars["marginal_kl"].item(), rel=1e-5)


@pytest.mark.parametrize("inference", ["air", "difference"])
def test_importance_weights_average_to_the_elbo(inference):
    """E[log w] over q(n, z) = ELBO: the mean of many single-sample log-weights matches the mean ELBO (with the
    count summed out) within a few standard errors, and the IW bound with K = 50 is above both."""
    model = small(inference=inference).eval()
    x = scenes_batch(4)
    with torch.no_grad():
        torch.manual_seed(2)
        logw = model.log_importance_weights(x, 400)  # [400, 4]
        elbo = torch.stack([model.elbo_terms(x).elbo for _ in range(200)])
    stderr = math.sqrt(logw.var(0).mean().item() / 400 + elbo.var(0).mean().item() / 200)
    assert abs(logw.mean().item() - elbo.mean().item()) < 5 * stderr + 1e-3
    iw = (torch.logsumexp(logw[:50], 0) - math.log(50)).mean()
    assert iw.item() >= elbo.mean().item() - 1e-3


@pytest.mark.parametrize("what,estimator", [("gaussian", "exact"), ("gaussian", "nvil"), ("prototypes", "exact"),
                                            ("prototypes", "nvil"), ("prototypes", "relax")])
def test_gradients_reach_every_part(what, estimator):
    model = small(what=what, count_estimator=estimator if what == "gaussian" else "exact",
                  class_estimator=estimator).train()
    x = scenes_batch()
    opt = torch.optim.SGD(model.parameters(), 1e-3)
    # a first step: D-VAE-ST prototypes seeded from the windows, NVIL statistics initialised, and the heads
    # (zero weights at the start, so that every step starts at the prior) move, to pass gradients on
    model.loss(x)[0].backward()
    opt.step()
    opt.zero_grad()
    loss, _ = model.loss(x)
    loss.backward()
    parts = {"presence": model.pres_head.bias, "where": model.where_head.linear.bias,
             "embedding": model.embed[0].weight}
    if what == "gaussian":
        parts.update(what_encoder=model.what_encoder[-1].linear.weight, decoder=model.what_decoder[-1].weight)
    else:
        parts.update(classes=model.dvae.class_head.weight, transform=model.dvae.transform_head.linear.weight,
                     prototypes=model.dvae.prototype_net[-1].weight)
    if estimator == "nvil":
        parts["baseline"] = (model.count_estimator if what == "gaussian" else model.dvae.estimator).net[-1].weight
    for name, p in parts.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
        assert torch.isfinite(p.grad).all(), name


def test_class_gradient_comes_only_from_the_estimator_and_the_kl():
    """DAIR's class logits learn from the estimator's zero-valued terms and the class KL; with a step whose
    object the image never uses (every count stops before it), the estimator contributes nothing."""
    model = small(what="prototypes", pres_init_logit=-30.0, max_steps=1).train()
    x = scenes_batch()
    model.loss(x)
    model.zero_grad()
    loss, _ = model.loss(x)
    loss.backward()
    with_kl = model.dvae.class_head.bias.grad.clone()
    inf = model.infer(x)
    kl = torch.distributions.kl_divergence(torch.distributions.Categorical(logits=inf.class_logits[:, 0]),
                                           torch.distributions.Categorical(logits=torch.zeros(B, 3)))
    q_used = model.count_posterior(inf).probs[:, 1]  # ≈ 0: the step is (almost) never drawn
    assert q_used.max() < 1e-9
    assert with_kl.abs().max() < 1e-6 and kl.mean() >= 0


def test_training_lowers_the_loss():
    model = small().train()
    x = scenes_batch(32)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    losses = []
    for _ in range(40):
        loss, _ = model.loss(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5


def test_detect_gives_a_count_and_boxes_of_the_used_steps():
    model = small(what="prototypes").eval()
    out = model.detect(scenes_batch())
    assert out["count"].shape == (B,) and out["boxes"].shape == (B, 3, 4) and out["classes"].shape == (B, 3)
    assert torch.equal(out["present"].sum(-1), out["count"])
    assert out["reconstruction"].shape == (B, 1, 30, 30)


def test_bad_configuration_names_the_field():
    with pytest.raises(ValueError, match="count_estimator"):
        small(count_estimator="vimco")
    with pytest.raises(ValueError, match="inference"):
        small(inference="residual")


def test_scoring_perfect_detections_and_a_missed_digit():
    digits = torch.zeros(10, 1, 28, 28)
    spec = scenes.SceneSpec(n=40, counts=(1, 2), seed=0)
    truth = scenes.generate(spec, digits, torch.arange(10))
    present = truth.classes >= 0
    boxes = truth.boxes.float().flip(1)  # the model may find the digits in another order
    present_flipped = present.flip(1)
    clusters = ((truth.classes + 3) % 10).flip(1)  # any one-to-one naming of the classes
    r = scenes.score_detections(truth, truth.counts, present_flipped, boxes, clusters)
    assert r["count_accuracy"] == 1 and r["recall"] == 1 and r["box_iou"] == pytest.approx(1.0)
    assert r["class_accuracy"] == 1
    fewer = truth.counts.clamp(max=1)
    r = scenes.score_detections(truth, fewer, truth.classes >= 0, truth.boxes.float() + 2 * (truth.classes >= 0)[..., None])
    assert r["count_accuracy_1"] == 1 and r["count_accuracy_2"] == 0
    assert r["box_iou"] == pytest.approx((18 * 18) / (2 * 400 - 18 * 18))


@pytest.mark.parametrize("what", ["gaussian", "prototypes"])
def test_sampled_scenes_follow_the_count_prior(what):
    """sample() is the generative story: binary scenes, blank exactly when the count drawn from p(n) is 0 (an
    object near the centre, σ_c small, lights some of its window's pixels; a blank canvas lights a pixel with
    probability EPS), so the share of blank scenes is p(n = 0) = 1 − ρ, and ρ → 1 leaves none blank."""
    torch.manual_seed(0)
    n = 2000
    model = small(what=what, pres_prior=0.3, max_steps=2, shift_prior_std=0.1)
    x = model.sample(n)
    assert x.shape == (n, 1, 30, 30) and set(x.unique().tolist()) <= {0.0, 1.0}
    blank = (x.flatten(1).sum(-1) <= 2).float().mean().item()
    p0 = model.count_prior(1, "cpu").probs[0, 0].item()
    assert p0 == pytest.approx(0.7)
    assert blank == pytest.approx(p0, abs=4 * math.sqrt(p0 * (1 - p0) / n))
    full = small(what=what, pres_prior=1 - 1e-6, max_steps=2, shift_prior_std=0.1).sample(200)
    assert (full.flatten(1).sum(-1) > 2).all()


def test_pixel_likelihoods_match_their_formulas_written_out():
    """Bernoulli: Σ x log p + (1 − x) log(1 − p) with p the canvas clamped into [EPS, 1 − EPS]; Gaussian: the
    canvas is the mean, not clamped, with the fixed variance `pixel_var` (the thesis's σ² = 0.2)."""
    from c2f.models.air import EPS

    x = torch.tensor([[[[1.0, 0.0], [1.0, 1.0]]]])
    canvas = torch.tensor([[[[1.7, 0.0], [0.25, 0.5]]]])  # an overshoot, an empty pixel, two partial ones
    p = [1 - EPS, EPS, 0.25, 0.5]
    bern = math.log(p[0]) + math.log(1 - p[1]) + math.log(p[2]) + math.log(p[3])
    assert small(image_shape=(1, 2, 2), window=2).log_likelihood(x, canvas).item() == pytest.approx(bern, rel=1e-5)
    var = 0.2
    sq = (1 - 1.7) ** 2 + 0 + (1 - 0.25) ** 2 + (1 - 0.5) ** 2
    gauss = -0.5 * sq / var - 2 * math.log(2 * math.pi * var)
    model = small(image_shape=(1, 2, 2), window=2, likelihood="gaussian", pixel_var=var)
    assert model.log_likelihood(x, canvas).item() == pytest.approx(gauss, rel=1e-5)
    with pytest.raises(ValueError, match="likelihood"):
        small(likelihood="poisson")


def test_presence_starts_at_its_configured_logit():
    """q(z_pres) at initialisation is sigmoid(pres_init_logit) at every step, whatever the image: logit 0 gives
    q(n) = (1/2, 1/4, 1/8, 1/8) for T = 3; the thesis's logit 2 puts q(n = 3) = sigmoid(2)³ ≈ 0.68."""
    x = scenes_batch()
    q0 = small(pres_init_logit=0.0).eval().count_posterior(small(pres_init_logit=0.0).eval().infer(x)).probs
    torch.testing.assert_close(q0, torch.tensor([0.5, 0.25, 0.125, 0.125]).expand(B, 4))
    model = small(pres_init_logit=2.0).eval()
    q2 = model.count_posterior(model.infer(x)).probs
    assert q2[:, 3].mean().item() == pytest.approx(torch.sigmoid(torch.tensor(2.0)).item() ** 3, rel=1e-5)


def test_precision_recall_and_f1_on_a_hand_computed_configuration():
    """Two scenes. Scene 0 holds digits at (0, 0, 20, 20) and (30, 30, 50, 50) and gets three detections: the
    first box shifted 4 px (IoU 320 / 480 = 2/3), the first box exactly (IoU 1) and a box shifted 10 px from
    the second (IoU 100 / 700 = 1/7). The Hungarian assignment maximises the summed IoU: exact ↔ first digit
    (1), shifted-10 ↔ second (1/7, below 0.5, so not a match); the 4-px copy is left over. Scene 1: one digit at
    (10, 10, 30, 30), one detection shifted 5 px down (IoU 300 / 500 = 0.6). So 2 of 3 digits found (recall
    2/3), 2 of 4 detections right (precision 1/2), F1 = 4/7, mean matched IoU 0.8, one count of two right."""
    from dataclasses import replace

    base = scenes.generate(scenes.SceneSpec(n=2, counts=(2,), seed=0), torch.zeros(3, 1, 28, 28), torch.arange(3))
    truth = replace(base, images=replace(base.images, y=torch.tensor([2, 1])),
                    classes=torch.tensor([[0, 1], [2, -1]]),
                    boxes=torch.tensor([[[0, 0, 20, 20], [30, 30, 50, 50]], [[10, 10, 30, 30], [-1, -1, -1, -1]]]))
    found = torch.tensor([[[4, 0, 24, 20], [0, 0, 20, 20], [40, 40, 60, 60]],
                          [[10, 15, 30, 35], [0, 0, 1, 1], [0, 0, 1, 1]]], dtype=torch.float)
    present = torch.tensor([[True, True, True], [True, False, False]])
    r = scenes.score_detections(truth, torch.tensor([3, 1]), present, found)
    assert r["recall"] == pytest.approx(2 / 3) and r["precision"] == pytest.approx(1 / 2)
    assert r["f1"] == pytest.approx(4 / 7) and r["box_iou"] == pytest.approx(0.8)
    assert r["count_accuracy"] == 0.5 and r["count_accuracy_2"] == 0 and r["count_accuracy_1"] == 1
    nothing = scenes.score_detections(truth, torch.tensor([0, 0]), torch.zeros(2, 3, dtype=torch.bool), found)
    assert nothing["precision"] == 0 and nothing["recall"] == 0 and nothing["f1"] == 0


def test_more_steps_at_test_time_share_the_trained_network():
    """with_steps(T + 1) runs the same parameters one step further: the first T steps are unchanged, q(n)
    gains a value, and the original model keeps its T."""
    model = small(max_steps=2).eval()
    longer = model.with_steps(3)
    assert model.cfg.max_steps == 2 and longer.cfg.max_steps == 3
    assert all(a is b for a, b in zip(model.parameters(), longer.parameters()))
    x = scenes_batch()
    short, long = model.infer(x, mode=True), longer.infer(x, mode=True)
    torch.testing.assert_close(long.where[:, :2], short.where)
    assert long.where.shape[1] == 3 and longer.count_posterior(long).probs.shape == (B, 4)
    assert longer.detect(x)["present"].shape == (B, 3)
    with pytest.raises(ValueError, match="steps"):
        model.with_steps(0)


def test_over_and_under_counts_and_the_first_objects_ink():
    """over_count / under_count are the shares of scenes given more / fewer objects than digits; a model whose
    first object draws exactly the scene draws all of its ink, one that draws half of it draws 1/2."""
    base = scenes.generate(scenes.SceneSpec(n=4, counts=(1,), seed=0), torch.ones(3, 1, 28, 28), torch.arange(3))
    r = scenes.score_detections(base, torch.tensor([1, 2, 0, 3]), torch.zeros(4, 1, dtype=torch.bool),
                                torch.zeros(4, 1, 4))
    assert (r["count_accuracy"], r["over_count"], r["under_count"]) == (0.25, 0.5, 0.25)

    class Copy(torch.nn.Module):  # the first object is `share` times the scene
        def __init__(self, share):
            super().__init__()
            self.share = share

        def infer(self, x, mode=True):
            return type("Inference", (), {"objects": (self.share * x).unsqueeze(1)})

    assert scenes.first_object_ink(Copy(1.0), base) == pytest.approx(1.0)
    assert scenes.first_object_ink(Copy(0.5), base) == pytest.approx(0.5)


def test_patch_ink_share_counts_the_ink_inside_the_central_patch(monkeypatch):
    """A uniformly inked 28 x 28 image keeps 400 / 784 of its ink in the central 20 x 20 patch; one inked only
    in its corner keeps none; the share is their mean."""
    from c2f import data

    x = torch.zeros(2, 1, 28, 28)
    x[0] = 1.0
    x[1, 0, 0, 0] = 1.0
    monkeypatch.setattr(data, "load", lambda *a, **k: type("Set", (), {"x": x})())
    assert scenes.patch_ink_share("test", 20) == pytest.approx((400 / 784 + 0) / 2)


def test_head_keeps_the_first_scenes_with_their_truth():
    full = scenes.generate(scenes.SceneSpec(n=6, counts=(0, 1, 2), seed=3), torch.ones(3, 1, 28, 28), torch.arange(3))
    part = full.head(4)
    assert len(part) == 4 and torch.equal(part.counts, full.counts[:4])
    assert torch.equal(part.images.x, full.images.x[:4])
    assert torch.equal(part.boxes, full.boxes[:4]) and torch.equal(part.classes, full.classes[:4])
    with pytest.raises(ValueError):
        full.head(7)
