"""The progressive VAEs and PCA-AE: shapes, prefix decoding, gradients and frozen stages, training lowers
the loss, the quotient posterior and the covariance penalty on hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from c2f import plots
from c2f.evaluate import (evaluate, evaluate_prefixes, iw_log_likelihood, marginal_bernoulli_log_likelihood,
                          prefix_curve, prior_completed_curve)
from c2f.experiment import train_model
from c2f.models import PCAAE, PCAAEConfig, ProgressiveConfig
from c2f.models.pcaae import covariance_penalty, pca_reconstruction_errors
from c2f.models.progressive import VARIANTS, gaussian_quotient, make_variant
from c2f.plots import decoded_rows, pair_traversal
from c2f.train import TrainConfig, train_stages

B, G, K = 5, 3, 2  # batch, groups, latents per group
BASE = ProgressiveConfig(groups=G, group_size=K, hidden=(24,), merge_hidden=8)


def batch(n: int = B, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.full((n, 1, 28, 28), 0.3), generator=g)


def model(name: str, **kw):
    torch.manual_seed(0)
    m = make_variant(name, ProgressiveConfig(**{**BASE.__dict__, **kw}))
    if hasattr(m, "set_stage"):
        m.set_stage(G)
    return m


@pytest.fixture(params=sorted(VARIANTS))
def variant(request):
    return request.param


# --- shapes and prefixes ---------------------------------------------------------------------------------


def test_shapes_for_every_prefix(variant):
    """elbo_terms / log_importance_weights / latent_means / reconstruct have the documented shapes, and the
    KL of the groups after g is zero when only g groups are decoded."""
    m, x = model(variant), batch()
    for g in range(1, G + 1):
        t = m.elbo_terms(x, groups=g)
        assert t.log_px.shape == t.kl.shape == t.elbo.shape == (B,)
        assert t.kl_dims.shape == (B, G * K)
        assert (t.kl_dims[:, g * K:] == 0).all() and (t.kl_dims[:, :g * K] > 0).all()
        torch.testing.assert_close(t.elbo, t.log_px - t.kl)
        assert m.log_importance_weights(x, 4, groups=g).shape == (4, B)
        assert m.reconstruct(x, groups=g).shape == x.shape
    assert m.latent_means(x).shape == (B, G * K)
    assert m.kl_groups(t.kl_dims).shape == (B, G)
    with pytest.raises(ValueError):
        m.elbo_terms(x, groups=G + 1)


def test_prefix_does_not_depend_on_later_groups(variant):
    """Decoding groups 1..g uses nothing of groups g+1..G: changing every parameter that belongs to the last
    group only leaves the prefix reconstructions unchanged (and changes the full one)."""
    m, x = model(variant), batch()
    before = [m.reconstruct(x, groups=g) for g in range(1, G + 1)]
    last_group = [p for n, p in m.named_parameters() if n.split(".")[:2] in
                  (["heads", str(G - 1)], ["group_nets", str(G - 1)], ["mergers", str(G - 1)],
                   ["models", str(G - 1)]) or n.startswith(f"decoder.projections.{G - 1}.")]
    assert last_group
    with torch.no_grad():
        for p in last_group:
            p.add_(torch.randn_like(p))
    after = [m.reconstruct(x, groups=g) for g in range(1, G + 1)]
    for g in range(G - 1):
        torch.testing.assert_close(before[g], after[g])
    assert not torch.allclose(before[-1], after[-1])


def test_decode_groups_matches_prefix_reconstruction(variant):
    """Decoding the posterior means of groups 1..g (the conceptual-compression rows) is the prefix
    reconstruction; a single group or a random subset decodes too."""
    m, x = model(variant), batch()
    rows = decoded_rows(m, x)
    assert len(rows) == G
    for g, row in enumerate(rows, 1):
        torch.testing.assert_close(row, m.reconstruct(x, groups=g))
    alone = decoded_rows(m, x, order=[2, 0, 1], cumulative=False)
    assert all(r.shape == x.shape for r in alone)
    assert pair_traversal(m, 0, 2, torch.linspace(-1, 1, 3)).shape == (9, 1, 28, 28)


def test_modular_decoder_sums_projections():
    """The decoder input is the sum of the per-group projections; a left-out group contributes nothing."""
    m, x = model("standard"), batch()
    zs = m.split_groups(torch.randn(B, G * K))
    d = m.decoder
    expected = d.trunk(d.project(0, zs[0]) + d.project(2, zs[2]))
    torch.testing.assert_close(d([zs[0], None, zs[2]]), expected)


# --- gradients and training ------------------------------------------------------------------------------


def test_every_parameter_gets_a_gradient(variant):
    m, x = model(variant), batch()
    loss, scalars = m.loss(x)
    assert loss.dim() == 0 and {"elbo", "recon", "kl"} <= scalars.keys()
    loss.backward()
    missing = [n for n, p in m.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum())]
    if variant == "rnn_nor":
        assert missing == ["canvas"]  # no reconstruction pathway: the canvas is never read
    else:
        assert not missing, missing


@pytest.mark.parametrize("inputs", ["combined", "original", "reconstruction"])
def test_multiple_trains_only_its_current_model(inputs):
    """At stage s only model s receives gradients; the frozen earlier models and unused later ones none."""
    m, x = model(f"multiple_{inputs}"), batch()
    m.set_stage(2)
    m.loss(x)[0].backward()
    for i, sub in enumerate(m.models):
        grads = [p.grad for p in sub.parameters()]
        if i == 1:
            assert all(gr is not None and gr.abs().sum() > 0 for gr in grads)
        else:
            assert all(gr is None for gr in grads) and not any(p.requires_grad for p in sub.parameters())
    assert m.elbo_terms(x).kl_dims[:, 2 * K:].eq(0).all()  # the default prefix is the stages trained


def test_single_holds_earlier_groups_fixed():
    """In Single the head of group 1 is trained only by the first prefix's term: its gradient equals that of
    −log p(x | z_1) + KL(q_1 ‖ p) computed with the same noise."""
    m, x = model("single"), batch()
    torch.manual_seed(1)
    m.loss(x)[0].backward()
    got = [p.grad.clone() for p in m.heads[0].parameters()]
    m.zero_grad()
    torch.manual_seed(1)
    h = m.encoder(x)
    qs = [head(h) for head in m.heads]
    zs = [q.rsample() for q in qs]
    log_px = m.likelihood(m.decoder.trunk(m.decoder.project(0, zs[0]))).log_prob(x)
    kl1 = m.kl_groups(m._kl_dims(qs, B))[:, 0]
    (-log_px.mean() + kl1.mean()).backward()
    for a, b in zip(got, m.heads[0].parameters()):
        torch.testing.assert_close(a, b.grad)


def test_single_per_group_parts_add_up_to_the_one_step_loss():
    """With step_per_group the G parts of Single's loss (same noise) sum to its one-step loss, the part g
    gives no gradient to the heads of other groups' KL, and the model asks the loop for G steps."""
    one, per = model("single"), model("single", step_per_group=True)
    assert one.steps_per_batch == 1 and per.steps_per_batch == G
    x = batch()
    torch.manual_seed(3)
    whole = one.loss(x)[0]
    parts = []
    for g in range(G):
        torch.manual_seed(3)
        parts.append(per.loss(x, part=g)[0])
    torch.testing.assert_close(sum(parts), whole)
    parts[0].backward()
    assert all(p.grad is None or not p.grad.any() for p in per.heads[G - 1].parameters())
    assert any(p.grad.any() for p in per.heads[0].parameters())
    torch.manual_seed(3)
    last = per.loss(x, part=G - 1)[1]
    torch.manual_seed(3)
    torch.testing.assert_close(last["elbo"], one.loss(x)[1]["elbo"])  # the last part logs the full ELBO


@pytest.mark.parametrize("name", ["standard", "single", "rnn", "rnn_gaussian", "quotient", "multiple_combined"])
def test_training_lowers_the_loss(name):
    m, x = model(name), batch(16)
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=3e-3)
    torch.manual_seed(0)
    first = m.loss(x)[0].item()
    for _ in range(40):
        loss = m.loss(x)[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.manual_seed(0)
    assert m.loss(x)[0].item() < first - 1.0


# --- the quotient posterior ------------------------------------------------------------------------------


def test_gaussian_quotient_hand_computed():
    """N(1, 1) / N(0, 3): var2 is lifted to 1 + softplus(3 − 1); then 1/var = 1 − 1/var2, mean = var · 1."""
    mean, logvar = gaussian_quotient(torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([0.0]),
                                     torch.tensor([math.log(3.0)]))
    var2 = 1 + math.log1p(math.exp(2.0))
    var = 1 / (1 - 1 / var2)
    torch.testing.assert_close(logvar, torch.tensor([math.log(var)]))
    torch.testing.assert_close(mean, torch.tensor([var * 1.0]))


def test_gaussian_quotient_with_a_broad_divisor_is_the_numerator():
    """Dividing by a very broad Gaussian changes (almost) nothing; the result is finite for any input."""
    mean, logvar = gaussian_quotient(torch.tensor([0.7]), torch.tensor([-1.0]), torch.tensor([3.0]),
                                     torch.tensor([12.0]))
    torch.testing.assert_close(mean, torch.tensor([0.7]), atol=1e-3, rtol=0)
    torch.testing.assert_close(logvar, torch.tensor([-1.0]), atol=1e-3, rtol=0)
    m, lv = gaussian_quotient(torch.randn(100), 4 * torch.randn(100), torch.randn(100), 4 * torch.randn(100))
    assert torch.isfinite(m).all() and torch.isfinite(lv).all()


# --- evaluation of prefixes ------------------------------------------------------------------------------


def test_prefix_evaluation(make_images):
    """evaluate(..., groups=g) and prefix_curve evaluate the prefix models; the full model is the last point."""
    m = model("rnn")
    data = make_images(20)
    curve = prefix_curve(m, data, iw_samples=3)
    assert len(curve) == G and all("nll_nats" in c for c in curve)
    full = evaluate(m, data, iw_samples=3)
    assert curve[-1]["elbo_nats"] == pytest.approx(full["elbo_nats"])
    assert iw_log_likelihood(m, batch(), 4, groups=1).shape == (B,)
    metrics = evaluate_prefixes(m, data, iw_samples=2)
    assert {f"test_elbo_nats@{g}" for g in range(1, G + 1)} | {f"kl_group_{g}" for g in range(1, G + 1)} \
        | {f"test_nll_nats@{g}" for g in range(1, G + 1)} | {"test_elbo_nats", "test_nll_nats"} <= metrics.keys()
    assert metrics["test_nll_nats"] == metrics[f"test_nll_nats@{G}"]
    assert all(-metrics[f"test_nll_nats@{g}"] >= metrics[f"test_elbo_nats@{g}"] - 1.0 for g in range(1, G + 1))
    assert sum(metrics[f"kl_group_{g}"] for g in range(1, G + 1)) == pytest.approx(metrics["test_kl_nats"])


def test_one_pass_prefix_curve_equals_evaluating_each_prefix(variant, make_images):
    """The prefix curve scores every prefix on one sample path; on one batch (so the same noise) entry g−1
    is exactly evaluate(..., groups=g), and the KL per dimension of prefix g stops at group g."""
    m, data = model(variant), make_images(20)
    curve = prefix_curve(m, data)
    for g, c in enumerate(curve, 1):
        each = evaluate(m, data, groups=g)
        assert c["elbo_nats"] == pytest.approx(each["elbo_nats"], rel=1e-5)
        assert c["kl_per_dim"] == pytest.approx(each["kl_per_dim"], rel=1e-4, abs=1e-6)


def test_prior_completed_curve_is_the_elbo_with_the_rest_drawn_from_the_prior(make_images):
    """With every group inferred, the prior-completed bound is the model's own ELBO (same noise); with none,
    it is log p(x | z ~ prior) with no KL; the curve's NLL is an upper bound's mirror: −NLL ≥ ELBO − noise."""
    from c2f.evaluate import _prior_completed_terms

    m, x = model("standard"), batch()
    torch.manual_seed(0)
    log_px, kl, log_ratio = _prior_completed_terms(m, x, set(range(G)), 1)
    torch.manual_seed(0)
    t = m.elbo_terms(x)
    torch.testing.assert_close(log_px[0], t.log_px)
    torch.testing.assert_close(kl[0], t.kl)
    log_px, kl, log_ratio = _prior_completed_terms(m, x, set(), 3)
    assert log_px.shape == (3, B) and not kl.any() and not log_ratio.any()
    curve = prior_completed_curve(m, make_images(40), [2, 0, 1], iw_samples=50)
    assert len(curve) == G
    assert all(-c["nll_nats"] >= c["elbo_nats"] - 2.0 for c in curve)
    assert curve[0]["kl_nats"] < curve[1]["kl_nats"] < curve[2]["kl_nats"]


def test_per_image_prefix_values_average_to_the_curves(make_images):
    """per_image adds every image's value of every prefix (for paired comparisons) and changes no mean: the
    lists average to the curve's numbers, with and without them the scalars are equal (same seed), and the
    prior-completed curve's per-image ELBO averages to its mean."""
    m, data = model("rnn"), make_images(20)
    plain, per = evaluate_prefixes(m, data, iw_samples=3), evaluate_prefixes(m, data, iw_samples=3, per_image=True)
    assert {k: v for k, v in per.items() if not k.endswith("_per_image")} == plain
    for g in range(1, G + 1):
        for key in (f"test_elbo_nats@{g}", f"test_nll_nats@{g}"):
            assert len(per[f"{key}_per_image"]) == 20
            assert sum(per[f"{key}_per_image"]) / 20 == pytest.approx(per[key], rel=1e-5)
    assert per["test_nll_nats_per_image"] == per[f"test_nll_nats@{G}_per_image"]
    standard = model("standard")
    curve = prior_completed_curve(standard, data, [2, 0, 1], per_image=True)
    assert [c["elbo_nats"] for c in curve] == [c["elbo_nats"] for c in prior_completed_curve(standard, data, [2, 0, 1])]
    assert all(sum(c["elbo_nats_per_image"]) / 20 == pytest.approx(c["elbo_nats"], rel=1e-5) for c in curve)


def test_no_latent_baseline_hand_computed(make_images):
    """Grey 0.5 everywhere in training gives p = 0.5 per pixel: log p(x) = 784 log ½ for any binary image."""
    train = make_images(10)
    train = type(train)(**{**train.__dict__, "x": torch.full_like(train.x, 0.5), "binarize": "none"})
    got = marginal_bernoulli_log_likelihood(train, make_images(7))
    assert got == pytest.approx(784 * math.log(0.5))


def test_experiment_trains_multiple_stage_by_stage(make_images, isolated_cache):
    m = make_variant("multiple_combined", BASE)
    assert m.num_stages == G
    histories = train_model(m, make_images(32), TrainConfig(epochs=1, batch_size=16), name="mult")
    assert len(histories) == G and m.stage == G
    assert len(list(isolated_cache.glob("mult-stage*.pt"))) == G


def test_quotient_divides_out_a_precision_below_one_over_ln2():
    """The lift σ₂² ← σ₁² + softplus(σ₂² − σ₁²) ≥ ln(1 + e^{σ₁²}) > ln 2 bounds the precision the quotient
    divides out by 1/ln 2 ≈ 1.44, whatever the two Gaussians; the quotient's precision is the difference."""
    torch.manual_seed(0)
    logvar1, logvar2 = (3 * torch.randn(1000, dtype=torch.float64) for _ in range(2))
    _, logvar = gaussian_quotient(torch.zeros_like(logvar1), logvar1, torch.zeros_like(logvar1), logvar2)
    divided = (-logvar1).exp() - (-logvar).exp()
    assert (divided > 0).all() and divided.max() < 1 / math.log(2)
    m = model("quotient")
    p = m.precisions(batch())
    assert set(p) == {"numerator", "divided_out", "quotient"} and p["quotient"].shape == (B, G * K)
    torch.testing.assert_close(p["quotient"], p["numerator"] - p["divided_out"], rtol=1e-4, atol=1e-4)
    assert (p["divided_out"] < 1 / math.log(2)).all()


# --- PCA-AE ----------------------------------------------------------------------------------------------


def test_covariance_penalty_hand_computed():
    z = torch.tensor([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0], [1.0, -1.0, 1.0], [-1.0, 1.0, -1.0]])
    assert covariance_penalty(z[:, :1]) == 0
    assert covariance_penalty(z[:, :2]) == pytest.approx(0.0)  # orthogonal columns
    # the last column (a copy of the first) against the first two: batch means of products 1 and 0 -> (1² + 0²) / 2
    assert covariance_penalty(z) == pytest.approx(0.5)
    assert covariance_penalty(torch.cat([z[:, :1], z[:, :1]], 1)) == pytest.approx(1.0)


def pcaae(stage: int) -> PCAAE:
    torch.manual_seed(0)
    return PCAAE(PCAAEConfig(latents=3, hidden=(16,))).set_stage(stage)


def test_pcaae_shapes_and_errors():
    m, x = pcaae(3), batch()
    assert m.encode(x).shape == (B, 3) and m.encode(x, 2).shape == (B, 2)
    assert m.reconstruct(x, 2).shape == x.shape
    assert m.reconstruction_errors(x).shape == (3,)
    loss, scalars = m.loss(x)
    assert loss.dim() == 0 and {"recon", "cov"} <= scalars.keys()
    with pytest.raises(ValueError):
        m.set_stage(4)


def test_pcaae_frozen_stages_get_no_gradient_and_keep_their_statistics():
    m, x = pcaae(2), batch(16)
    m.train()
    assert not m.encoders[0].training and m.encoders[1].training  # frozen encoder stays in eval mode
    stats = m.encoders[0][-1].running_mean.clone()
    m.loss(x)[0].backward()
    torch.testing.assert_close(m.encoders[0][-1].running_mean, stats)
    for i in range(3):
        got = [p.grad is not None for p in [*m.encoders[i].parameters(), *m.decoders[i].parameters()]]
        assert all(got) if i == 1 else not any(got)


def test_train_stages_runs_every_stage_and_lowers_the_error(isolated_cache, make_images):
    m = PCAAE(PCAAEConfig(latents=2, hidden=(16,)))
    data = make_images(64)
    before = m.reconstruction_errors(data.x)
    seen = []
    histories = train_stages(m, data, TrainConfig(epochs=3, batch_size=16, lr=3e-3), name="pcaae-test",
                             on_epoch_end=lambda epoch, summary: seen.append((summary["stage"], epoch)))
    assert len(histories) == 2 and m.stage == 2
    assert seen == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3)]  # every epoch of every stage is reported
    assert len(list(isolated_cache.glob("pcaae-test-stage*.pt"))) == 2
    assert (m.reconstruction_errors(data.x) < before).all()
    seen.clear()  # cached stages train no epoch, so report none
    train_stages(PCAAE(PCAAEConfig(latents=2, hidden=(16,))), data, TrainConfig(epochs=3, batch_size=16, lr=3e-3),
                 name="pcaae-test", on_epoch_end=lambda epoch, summary: seen.append(epoch))
    assert seen == []


def test_linear_pca_errors_decrease_to_zero():
    x = torch.randn(50, 1, 2, 2)
    err = pca_reconstruction_errors(x, x, 4)
    assert (err[1:] <= err[:-1] + 1e-6).all() and err[-1] == pytest.approx(0.0, abs=1e-4)


# --- figures ---------------------------------------------------------------------------------------------


def test_progressive_figures():
    fig = plots.lines_by_group({"a": [1.0, 2.0], "b": [0.5, 0.7]}, "ELBO", errors={"a": [0.1, 0.1]})
    assert len(fig.axes[0].lines) == 2
    fig = plots.lines_by_group({"single": [1.0, 2.0], "single_steps": [0.5, 0.7], "standard (rest from prior)": [0, 1]},
                               "ELBO", references={"no latents": 0.2}, dashed=["standard (rest from prior)"])
    single, steps, control, floor = fig.axes[0].lines
    assert single.get_color() == steps.get_color() and single.get_marker() != steps.get_marker()
    assert control.get_color() == plots.model_color("standard") and control.get_linestyle() == "--"
    assert list(floor.get_ydata()) == [0.2, 0.2] and floor.get_color() == plots.model_color("no_latents")
    fig = plots.image_rows([torch.rand(4, 1, 28, 28)] * 3, ["x", "1", "1–2"], title="t")
    assert len(fig.axes) == 3
    fig = plots.correlation_matrices({"a": torch.eye(3), "b": -torch.eye(3)})
    assert len(fig.axes) >= 2
    plots.plt.close("all")


def test_subset_log_likelihood_of_the_prefix_is_the_mean_path_likelihood(variant):
    m, x = model(variant), batch()
    expected = m.likelihood(torch.logit(m.reconstruct(x, groups=2).double()).float()).log_prob(x).mean()
    torch.testing.assert_close(m.subset_log_likelihood(x, [0, 1]), expected, rtol=1e-4, atol=1e-2)
    assert torch.isfinite(m.subset_log_likelihood(x, [2]))


# --- the order of the groups -----------------------------------------------------------------------------


def test_only_the_standard_vae_leaves_its_groups_unordered(variant):
    """Every variant but the standard VAE is trained to order its groups; the standard one says it is not."""
    assert model(variant).ordered_groups == (variant != "standard")


def test_groups_by_kl_sums_each_groups_kl_and_ranks_largest_first():
    kl_per_dim = [0.1, 0.2, 5.0, 0.0, 1.0, 1.0]  # groups of K = 2: KL 0.3, 5.0, 2.0
    assert model("standard").groups_by_kl(kl_per_dim) == [1, 2, 0]


def test_an_unordered_model_orders_its_code_by_kl_and_a_prefix_decodes_those_groups():
    """The standard VAE's code_order takes its groups by KL; its prefix g decodes the g groups of largest KL
    (the rest left out), as subset_log_likelihood does. An ordered model keeps 1..G."""
    kl_per_dim, x = [0.1, 0.2, 5.0, 0.0, 1.0, 1.0], batch()
    m = model("standard")
    code = m.code_order(kl_per_dim)
    assert code.kl == code.features == [[2, 3], [4, 5], [0, 1]]
    assert code.labels == ["group 2", "group 3", "group 1"] and code.kind == "latent groups by KL, largest first"
    for g, subset in ((1, [1]), (2, [1, 2]), (3, [0, 1, 2])):
        assert torch.allclose(code.log_px(x, g).mean(), m.subset_log_likelihood(x, subset))
    ordered = model("single").code_order(kl_per_dim)
    assert ordered.kl == [[0, 1], [2, 3], [4, 5]] and ordered.kind == "latent groups 1..G"
