"""Every model's ELBO terms computed a second, independent way (issue 20 §1).

The models' own ``elbo_terms`` / ``loss`` are compared with terms rebuilt here from the distributions the model
handed to ``kl_divergence`` and from the pixel logits it handed to ``pixel_likelihood`` (both recorded on the
way, their values left alone): KLs in closed form written out here, against ``torch.distributions`` and against
a Monte-Carlo estimate; log p(x|z) written out per pixel; the loss against −ELBO; the K = 1 importance weight
against the ELBO in expectation and the IW bound rising in K; exact enumeration of small discrete latents.
``benchmarks/mutate_terms.py`` scales every term site of the models by 0.99 and checks that a test here fails.
"""

from __future__ import annotations

import importlib
import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Categorical, Independent, Normal, kl_divergence

from c2f.models import (AIR, DVAE, HVAE, MSVAE, PCAAE, SVAE, VAE, VLAE, AIRConfig, ConvDRAW, DVAEConfig,
                        HierarchicalConfig, HierarchicalPixelVAE, LadderVAE, MarkovHVAE, MSVAEConfig, PCAAEConfig,
                        PixelVAE, ProgressiveConfig, SVAEConfig, VAEConfig, VLAEConfig)
from c2f.models.convdraw import ConvDRAWConfig
from c2f.models.pixelvae import HierarchicalPixelVAEConfig, PixelVAEConfig
from c2f.models.progressive import VARIANTS, gaussian_quotient, make_variant
from c2f.nn import pixel_likelihood

B = 3
H = HierarchicalConfig(latent_dims=(3, 2), hidden=(16, 8))
PIX = dict(channels=8, kernel_size=3, up_channels=4, enc_channels=(4, 8), conv_features=16, image_shape=(1, 8, 8))
FAMILIES = {
    "vae": lambda: VAE(VAEConfig(latent_dim=3, hidden=(16,))),
    "vae_conv": lambda: VAE(VAEConfig(arch="conv", latent_dim=3, channels=(4, 8), conv_features=16)),
    "hvae": lambda: HVAE(H), "markov_hvae": lambda: MarkovHVAE(H), "lvae": lambda: LadderVAE(H),
    "vlae": lambda: VLAE(VLAEConfig(latent_dims=(3, 2), hidden=(16, 8))),
    "svae": lambda: SVAE(SVAEConfig(latent_dims=(3, 2), hidden=(16, 8))),
    "msvae": lambda: MSVAE(MSVAEConfig(latent_dim=3, hidden=(16,), channels=4, res_blocks=1)),
    "convdraw": lambda: ConvDRAW(ConvDRAWConfig(iterations=2, hidden=8, latent_channels=2, read_channels=8)),
    "pixelcnn": lambda: PixelVAE(PixelVAEConfig(layers=2, latent_dim=0, **PIX)),
    "pixelvae": lambda: PixelVAE(PixelVAEConfig(layers=2, latent_dim=3, conditioning="upsample", **PIX)),
    "pixelvae2": lambda: HierarchicalPixelVAE(HierarchicalPixelVAEConfig(
        latent_dims=(4, 2), hidden=16, decoder=PixelVAEConfig(layers=2, **PIX))),
    "dvae": lambda: DVAE(DVAEConfig(num_classes=3, hidden=(16,), decoder_hidden=(16,), prototype_init="random")),
    "dvae_st": lambda: DVAE(DVAEConfig(num_classes=3, transform=True, hidden=(16,), decoder_hidden=(16,),
                                       prototype_init="random")),
    **{f"progressive_{v}": (lambda v=v: make_variant(v, ProgressiveConfig(groups=3, group_size=2, hidden=(16,),
                                                                            merge_hidden=8)))
       for v in sorted(VARIANTS)},
}
AIR_BASE = dict(image_shape=(1, 30, 30), window=12, scale_prior=2.5, z_what=4, num_classes=3, features=16,
                hidden=16, what_hidden=16, baseline_hidden=8, max_steps=2)
AIRS = {"air": dict(what="gaussian"), "difference_air": dict(what="gaussian", inference="difference"),
        "dair": dict(what="prototypes", class_marginal_weight=0.0)}
MODULES = ["vae", "progressive", "hierarchical", "layered", "multistage", "sequential", "vlae", "convdraw",
           "pixelvae", "dvae", "air"]


def build(name):
    """The family's model in eval mode. D-VAE and AIR start some heads at zero (q = p at initialisation, a KL
    of exactly 0 that no scaling changes): their parameters are moved by N(0, 0.1²) noise."""
    torch.manual_seed(0)
    model = AIR(AIRConfig(**{**AIR_BASE, **AIRS[name]})) if name in AIRS else FAMILIES[name]()
    if name in AIRS or name.startswith("dvae"):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def images(model, n=B, seed=0):
    shape = model.cfg.decoder.image_shape if hasattr(model.cfg, "decoder") else model.cfg.image_shape
    return torch.bernoulli(torch.full((n, *shape), 0.3), generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def recorded(monkeypatch):
    """The arguments of every ``kl_divergence`` and ``pixel_likelihood`` call the models make (as pairs
    ``("kl", q, p)`` and ``("px", logits, kind)``), the calls themselves left unchanged."""
    calls = []

    def kl(q, p):
        calls.append(("kl", q, p))
        return kl_divergence(q, p)

    def px(logits, kind="bernoulli"):
        calls.append(("px", logits, kind))
        return pixel_likelihood(logits, kind)

    for m in MODULES:
        module = importlib.import_module(f"c2f.models.{m}")
        for name, fn in (("kl_divergence", kl), ("pixel_likelihood", px)):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, fn)
    return calls


# --- the independent computations -------------------------------------------------------------------------


def base(d):
    while isinstance(d, Independent):
        d = d.base_dist
    return d


def kl_by_hand(q, p) -> torch.Tensor:
    """KL(q‖p) per example, summed over the rest: Gaussians
    0.5 (log σp²/σq² + (σq² + (μq − μp)²)/σp² − 1), categoricals Σ q (log q − log p)."""
    q, p = base(q), base(p)
    if isinstance(q, Categorical):
        return (q.probs * (q.probs.log() - p.probs.log())).sum(-1)
    vq, vp = q.scale ** 2, p.scale ** 2
    kl = 0.5 * ((vp / vq).log() + (vq + (q.loc - p.loc) ** 2) / vp - 1)
    return kl.flatten(1).sum(-1)


def bernoulli_by_hand(logits, x) -> torch.Tensor:
    """Σ_pixels x log σ(l) + (1 − x) log σ(−l) per image (leading sample dimensions kept)."""
    ll = x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)
    return ll.flatten(-3).sum(-1)


def test_the_hand_likelihood_for_a_few_pixels():
    """Three pixels written out with math.log against pixel_likelihood: the formula the tests rely on."""
    logits = torch.tensor([[[[0.3, -2.0, 5.0]]]])
    x = torch.tensor([[[[1.0, 0.0, 0.0]]]])
    expected = math.log(1 / (1 + math.exp(-0.3))) + math.log(1 - 1 / (1 + math.exp(2.0))) \
        + math.log(1 - 1 / (1 + math.exp(-5.0)))
    assert pixel_likelihood(logits).log_prob(x).item() == pytest.approx(expected, rel=1e-6)
    assert bernoulli_by_hand(logits, x).item() == pytest.approx(expected, rel=1e-6)


# --- KL terms and log p(x|z) of every family ----------------------------------------------------------------


KL_FAMILIES = sorted(set(FAMILIES) - {"pixelcnn", "dvae", "dvae_st"})


@pytest.mark.parametrize("name", KL_FAMILIES)
def test_elbo_terms_against_the_recorded_distributions(name, recorded):
    """elbo_terms' total KL = Σ of the closed-form KLs (here by hand) of the distributions it compared, and
    log p(x|z) = the Bernoulli log-likelihood by hand of the last logits it decoded (hierarchical models whose
    top-down KL is not closed form: the sample estimate log q(z) − log p(z) at their own z)."""
    model = build(name)
    x = images(model)
    t = same_draws(lambda: model.elbo_terms(x))
    kls = [c for c in recorded if c[0] == "kl"]
    pxs = [c for c in recorded if c[0] == "px"]
    assert kls and pxs
    total = sum(kl_by_hand(q, p) for _, q, p in kls)
    if name in ("hvae", "markov_hvae"):  # layers below the top: log q − log p at the sample, by hand
        zs, qs, ps, _, closed = same_draws(lambda: model._pass(x))
        start, sampled = 0, 0
        for z, (qm, qlv), (pm, plv), exact in zip(zs, qs, ps, closed):
            units = slice(start, start + z.shape[-1])
            start += z.shape[-1]
            if exact:
                torch.testing.assert_close(t.kl_dims[:, units].sum(-1), total, rtol=1e-5, atol=1e-5)
                continue
            sampled += 1
            hand = (-0.5 * ((z - qm) / (0.5 * qlv).exp()) ** 2 - 0.5 * qlv) \
                - (-0.5 * ((z - pm) / (0.5 * plv).exp()) ** 2 - 0.5 * plv)
            torch.testing.assert_close(t.kl_dims[:, units], hand, rtol=1e-5, atol=1e-5)
        assert len(kls) == 1 and sampled == 1
    else:
        torch.testing.assert_close(t.kl, total, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(t.log_px, bernoulli_by_hand(pxs[-1][1].view(x.shape), x), rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("name", KL_FAMILIES + ["dvae_st"])
def test_every_recorded_kl_against_torch_and_monte_carlo(name, recorded):
    """Each closed-form KL the model asked for: the formula here equals torch.distributions.kl_divergence, and
    a Monte-Carlo estimate E_q[log q − log p] over 20000 draws agrees within 5 standard errors."""
    model = build(name)
    with torch.no_grad():
        model.elbo_terms(images(model))
        for _, q, p in [c for c in recorded if c[0] == "kl"]:
            torch.testing.assert_close(kl_by_hand(q, p), kl_divergence(q, p).reshape(len(kl_by_hand(q, p)), -1)
                                       .sum(-1), rtol=1e-5, atol=1e-5)
            if isinstance(base(q), Categorical):
                continue
            z = q.sample((20000,))
            ratio = (q.log_prob(z) - p.log_prob(z)).reshape(20000, z.shape[1], -1).sum(-1)
            se = ratio.std(0) / math.sqrt(20000)
            assert ((ratio.mean(0) - kl_by_hand(q, p)).abs() < 5 * se + 1e-4).all()


@pytest.mark.parametrize("name", ["dvae", "dvae_st"])
def test_dvae_terms_by_enumerating_the_classes(name, recorded):
    """D-VAE(-ST): log p(x|z) is Σ_k q(k|x) log p(x|k, t), each class's likelihood by hand from the decoded
    logits; the class KL is Σ_k q (log q + log K) and the transformation KL the Gaussian one by hand."""
    model = build(name)
    x = images(model)
    with torch.no_grad():
        t = model.elbo_terms(x)
        q = model.class_logits(x).softmax(-1)  # [B, K]
    (_, logits, _), = [c for c in recorded if c[0] == "px"]
    k = model.cfg.num_classes
    per_class = bernoulli_by_hand(logits.view(k, *x.shape), x)  # [K, B]
    torch.testing.assert_close(t.log_px, (q.T * per_class).sum(0), rtol=1e-6, atol=1e-4)
    torch.testing.assert_close(t.kl_dims[:, 0], (q * (q.log() + math.log(k))).sum(-1), rtol=1e-5, atol=1e-6)
    if name == "dvae_st":
        (_, qt, pt), = [c for c in recorded if c[0] == "kl" and not isinstance(c[1], Categorical)]
        torch.testing.assert_close(t.kl_dims[:, 1], kl_by_hand(qt, pt), rtol=1e-5, atol=1e-5)


def test_pixelcnn_has_the_exact_likelihood_by_hand(recorded):
    model = build("pixelcnn")
    x = images(model)
    with torch.no_grad():
        t = model.elbo_terms(x)
        logw = model.log_importance_weights(x, 2)
    (_, logits, _), *_ = [c for c in recorded if c[0] == "px"]
    torch.testing.assert_close(t.log_px, bernoulli_by_hand(logits.view(x.shape), x))
    torch.testing.assert_close(logw, t.log_px.expand(2, -1))
    assert t.kl_dims.shape == (B, 0)


# --- the loss: −ELBO with KL weight 1 and no free bits, or the documented sum of ELBO pieces ---------------


def kl_in_loss(model, x, **kwargs):
    """The KL part of the loss, loss(KL weight 1) − loss(KL weight 0) at the same draws (the rest is the same
    float32 sum, so this is exact to ~2 ulp of the loss: it resolves a 1 % change of a 0.1-nat KL), and
    that tolerance."""
    with_kl = same_draws(lambda: model.loss(x, kl_weight=1.0, **kwargs)[0])
    without = same_draws(lambda: model.loss(x, kl_weight=0.0, **kwargs)[0])
    return (with_kl - without).item(), 2 * torch.finfo(torch.float32).eps * abs(with_kl.item())


def same_draws(fn, seed=1):
    torch.manual_seed(seed)
    with torch.no_grad():
        return fn()


PLAIN = ["vae", "vae_conv", "hvae", "markov_hvae", "lvae", "vlae", "convdraw", "pixelcnn", "pixelvae", "pixelvae2",
         "dvae", "dvae_st", "progressive_standard", *AIRS]


@pytest.mark.parametrize("name", PLAIN)
def test_loss_is_minus_the_elbo(name):
    """Same posterior draws: loss(kl_weight=1, free_bits=0) = −mean ELBO, and the logged elbo, recon and kl
    are its batch means."""
    model = build(name)
    x = images(model)
    t = same_draws(lambda: model.elbo_terms(x))
    loss, scalars = same_draws(lambda: model.loss(x, kl_weight=1.0, free_bits=0.0))
    assert loss.item() == pytest.approx(-t.elbo.mean().item(), rel=1e-5)
    kl, tol = kl_in_loss(model, x)
    assert kl == pytest.approx(t.kl.mean().item(), abs=tol)
    assert scalars["elbo"].item() == pytest.approx(t.elbo.mean().item(), rel=1e-5)
    if "recon" in scalars:
        assert scalars["recon"].item() == pytest.approx(-t.log_px.mean().item(), rel=1e-5)
        assert scalars["kl"].item() == pytest.approx(t.kl.mean().item(), rel=1e-5, abs=1e-6)


def test_svae_loss_adds_every_steps_likelihood(recorded):
    """SVAE: Σ_t −log p(x | x̂_t) (each by hand from the step's logits) plus the KL."""
    model = build("svae")
    x = images(model)
    t = same_draws(lambda: model.elbo_terms(x))
    recorded.clear()
    loss, _ = same_draws(lambda: model.loss(x))
    steps = [c[1] for c in recorded if c[0] == "px"][1:]  # the first is elbo_terms' own
    assert len(steps) == len(model.layer_sizes)
    recon = sum(-bernoulli_by_hand(lg.view(x.shape), x).mean() for lg in steps)
    assert loss.item() == pytest.approx(recon.item() + t.kl.mean().item(), rel=1e-5)


def test_msvae_loss_adds_the_l1_error_of_stage_two():
    model = build("msvae")
    x = images(model)
    t = same_draws(lambda: model.elbo_terms(x))
    loss, scalars = same_draws(lambda: model.loss(x))
    with torch.no_grad():
        l1 = (x - model.stages(t.zs)[1]).abs().sum((1, 2, 3)).mean()
    assert loss.item() == pytest.approx(-t.elbo.mean().item() + model.cfg.l1_weight * l1.item(), rel=1e-5)
    assert scalars["l1_stage2"].item() == pytest.approx(l1.item(), rel=1e-5)


@pytest.mark.parametrize("name", ["progressive_single", "progressive_single_steps", "progressive_rnn",
                                  "progressive_rnn_nor", "progressive_rnn_per_group", "progressive_rnn_gaussian",
                                  "progressive_quotient"])
def test_progressive_losses_are_sums_of_prefix_elbos(name):
    """Single: Σ_g [−log p(x | z_≤g) + KL_g]; its G parts add up to it. Recurrent and Quotient: Σ_g −ELBO_g of
    the prefixes (the cumulative KL in each)."""
    model = build(name)
    x = images(model)
    prefixes = same_draws(lambda: model.prefix_elbo_terms(x))
    recon = sum(-p.log_px.mean() for p in prefixes)
    kl = prefixes[-1].kl.mean() if name.startswith("progressive_single") else sum(p.kl.mean() for p in prefixes)
    loss, _ = same_draws(lambda: model.loss(x))
    assert loss.item() == pytest.approx((recon + kl).item(), rel=1e-5)
    kl_part, tol = kl_in_loss(model, x)
    assert kl_part == pytest.approx(kl.item(), abs=tol)
    if name == "progressive_single_steps":
        parts = sum(same_draws(lambda g=g: model.loss(x, part=g))[0] for g in range(model.steps_per_batch))
        assert parts.item() == pytest.approx(loss.item(), rel=1e-5)


@pytest.mark.parametrize("variant", ["combined", "original", "reconstruction"])
def test_multiple_loss_at_stage_s_is_the_likelihood_of_models_1_to_s_plus_the_last_kl(variant):
    model = build(f"progressive_multiple_{variant}")
    x = images(model)
    for stage in (1, 2, 3):
        model.set_stage(stage).eval()
        t = same_draws(lambda: model.elbo_terms(x, groups=stage))
        loss, _ = same_draws(lambda: model.loss(x))
        last = model.kl_groups(t.kl_dims)[:, stage - 1].mean()
        assert loss.item() == pytest.approx(-t.log_px.mean().item() + last.item(), rel=1e-5)
        kl, tol = kl_in_loss(model, x)
        assert kl == pytest.approx(last.item(), abs=tol)


# --- importance weights: K = 1 is the ELBO in expectation, the bound rises with K ---------------------------


@pytest.mark.parametrize("name", sorted(set(FAMILIES) - {"dvae", "dvae_st"}) + sorted(AIRS))
def test_importance_weights_average_to_the_elbo_and_the_bound_rises_in_k(name):
    """One image repeated N times: the mean single-sample log-weight equals the mean ELBO within 5 standard
    errors of their difference (paired: both from the same seed, so where the two draw z alike the noise of
    log p(x|z) cancels and only that of log p(z) − log q(z) + KL is left); the IW bound L_K = E log mean_K w,
    K = 1, 10, 100 (from 100 weights each of 40 copies), rises."""
    model = build(name)
    n = 400 if name in AIRS else 2000
    x1 = images(model, 1)
    x = x1.expand(n, *x1.shape[1:])
    logw = same_draws(lambda: model.log_importance_weights(x, 1)[0])
    elbo = same_draws(lambda: model.elbo_terms(x).elbo)  # paired: the same z where both draw alike
    diff = logw - elbo
    se = diff.std().item() / math.sqrt(n)
    assert abs(diff.mean().item()) < 5 * se + 1e-4, (logw.mean(), elbo.mean(), se)
    if name == "pixelcnn":
        return
    w = same_draws(lambda: model.log_importance_weights(x[:10 if name in AIRS else 40], 100))
    bounds = [(torch.logsumexp(w.view(100 // k, k, -1), 1) - math.log(k)).mean().item() for k in (1, 10, 100)]
    assert bounds[0] < bounds[1] < bounds[2], bounds


@pytest.mark.parametrize("name", ["dvae", "dvae_st"])
def test_dvae_importance_weights_sum_the_classes_out(name, recorded):
    """log w = log Σ_k p(k) p(x | k, t) by hand from the decoded logits, plus log p(t) − log q(t | x) at the
    transformation drawn (D-VAE-ST); E log w ≥ the ELBO (the classes are summed out, not sampled)."""
    model = build(name)
    x = images(model)
    logw = same_draws(lambda: model.log_importance_weights(x, 2))
    (_, logits, _), = [c for c in recorded if c[0] == "px"]
    k = model.cfg.num_classes
    per_class = bernoulli_by_hand(logits.view(k, -1, *x.shape), x)  # [K, 1 or 2, B]
    expected = (torch.logsumexp(per_class, 0) - math.log(k)).expand(2, -1)
    if name == "dvae_st":
        def draw():
            q_t = model.transform_posterior(x)
            t = q_t.sample((2,))
            return model.transform_prior(B).log_prob(t) - q_t.log_prob(t)
        expected = expected + same_draws(draw)
    torch.testing.assert_close(logw, expected, rtol=1e-5, atol=1e-3)
    if name == "dvae":  # log p(x) exactly, above the ELBO
        assert (logw[0] >= same_draws(lambda: model.elbo_terms(x).elbo) - 1e-3).all()


# --- exact enumeration of AIR's count, the PCA-AE penalty, the Quotient's precision ---------------------------


@pytest.mark.parametrize("name", sorted(AIRS))
def test_air_elbo_sums_the_count_out_exactly(name, recorded):
    """E_q(n)[log p(x | n)] with the count enumerated: Σ_n q(n) · log-likelihood by hand of the canvas of n
    objects; the count's KL by hand against the prior; step i's KL (where and what, DAIR: where, class and
    transformation, each by hand from the distributions compared) weighted by q(n ≥ i)."""
    model = build(name)
    x = images(model)
    torch.manual_seed(3)
    with torch.no_grad():
        t = model.elbo_terms(x)
        kls = [kl_by_hand(q, p) for c, q, p in recorded if c == "kl"][:-1]  # the last: the count's
        torch.manual_seed(3)
        inf = model.infer(x)
        q = model.count_posterior(inf).probs  # [B, T + 1]
        probs = model.canvases(inf).transpose(0, 1)  # [T + 1, B, ...]
        ll = bernoulli_by_hand(torch.logit(probs.clamp(1e-4, 1 - 1e-4)), x)  # [T + 1, B]: AIR's clamp
        prior = model.count_prior(B, "cpu").probs
    steps = model.cfg.max_steps
    per_step = len(kls) // steps
    step_kl = torch.stack([sum(kls[i * per_step:(i + 1) * per_step]) for i in range(steps)], -1)
    torch.testing.assert_close(t.log_px, (q * ll.T).sum(-1), rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(t.kl_dims[:, 0], (q * (q.log() - prior.log())).sum(-1), rtol=1e-5, atol=1e-6)
    used = torch.stack([q[:, i:].sum(-1) for i in range(1, q.shape[1])], -1)
    torch.testing.assert_close(t.kl_dims[:, 1:], used * step_kl, rtol=1e-5, atol=1e-5)


def test_pcaae_loss_is_squared_error_plus_the_covariance_penalty_by_hand():
    """Stage 3: Σ_pixels (x̂ − x)² + λ · mean_{i<3} (mean_b z_i z_3)², each written out here."""
    torch.manual_seed(0)
    model = PCAAE(PCAAEConfig(latents=3, hidden=(8,), cov_weight=2.0)).set_stage(1)
    brightness = torch.linspace(0.05, 0.95, 16)[:, None, None, None]  # shared by the encoders: correlated
    x = torch.bernoulli(brightness.expand(16, 1, 28, 28), generator=torch.Generator().manual_seed(0))
    for e in model.encoders[:2]:  # as if trained: the frozen encoders' running statistics are this batch's
        e[-1].momentum = None
    with torch.no_grad():
        model.encode(x, 2)
    model.set_stage(3)
    loss, scalars = model.loss(x)
    with torch.no_grad():
        z = model.encode(x, 3)
        recon = ((model.decode(z) - x) ** 2).sum((1, 2, 3)).mean()
        cov = sum(((z[:, i] * z[:, 2]).mean()) ** 2 for i in range(2)) / 2
    assert cov > 1e-2
    assert scalars["cov"].item() == pytest.approx(cov.item(), rel=1e-6)
    assert loss.item() == pytest.approx(recon.item() + 2.0 * cov.item(), rel=1e-6)


def test_gaussian_quotient_is_the_renormalised_ratio_of_the_two_densities():
    """log N(z; m1, v1) − log N(z; m2, v2') − log N(z; m, v) does not depend on z (v2' the lifted variance),
    and the precision is 1/v1 − 1/v2' written out here."""
    g = torch.Generator().manual_seed(0)
    m1, lv1, m2, lv2 = (torch.randn(5, generator=g) for _ in range(4))
    mean, logvar = gaussian_quotient(m1, lv1, m2, lv2)
    v1 = lv1.exp()
    v2 = v1 + F.softplus(lv2.exp() - v1)
    torch.testing.assert_close((-logvar).exp(), 1 / v1 - 1 / v2, rtol=1e-5, atol=1e-6)
    z = torch.randn(7, 5, generator=g)
    diff = Normal(m1, v1.sqrt()).log_prob(z) - Normal(m2, v2.sqrt()).log_prob(z) \
        - Normal(mean, (0.5 * logvar).exp()).log_prob(z)
    torch.testing.assert_close(diff, diff[:1].expand_as(diff), rtol=1e-4, atol=1e-4)


def log_normal(z, mean, std) -> torch.Tensor:
    """log N(z; mean, std²) written out, summed over every dimension after the first two ([k, B])."""
    ll = -0.5 * ((z - mean) / std) ** 2 - torch.log(std) - 0.5 * math.log(2 * math.pi)
    return ll.reshape(*ll.shape[:2], -1).sum(-1)


def hand_log_weights(name, model, x, k):
    """log p(z) − log q(z | x) [k, B] by hand for the k samples the model draws after seed 1 (the same draws,
    rebuilt from the model's own posteriors; the caller adds log p(x | z)). Gaussian families only."""
    b = x.shape[0]
    xk = x.unsqueeze(0).expand(k, *x.shape).reshape(k * b, *x.shape[1:])
    std = lambda lv: (0.5 * lv).exp()  # noqa: E731
    torch.manual_seed(1)
    with torch.no_grad():
        if name in ("vae", "vae_conv", "pixelvae"):
            q = model.encode(x)
            z = q.sample((k,))
            return log_normal(z, 0, torch.ones(())) - log_normal(z, q.mean, q.stddev)
        if name == "pixelvae2":
            q1, q2 = model.encode(x)
            z1, z2 = q1.sample((k,)), q2.sample((k,))
            p1 = model.p1(z2)
            return (log_normal(z1, p1.mean, p1.stddev) + log_normal(z2, 0, torch.ones(()))
                    - log_normal(z1, q1.mean, q1.stddev) - log_normal(z2, q2.mean, q2.stddev))
        if name.startswith("progressive"):
            qs, zs, _ = model._run(xk, model._check(None))
            return sum(log_normal(z.view(k, b, -1), 0, torch.ones(())) - log_normal(z.view(k, b, -1), q.mean.view(
                k, b, -1), q.stddev.view(k, b, -1)) for q, z in zip(qs, zs))
        if name in ("vlae", "svae", "msvae"):
            qs = model._posteriors(x)
            zs = [Normal(m, std(lv)).sample((k,)) for m, lv in qs]
            return sum(log_normal(z, 0, torch.ones(())) - log_normal(z, m, std(lv)) for (m, lv), z in zip(qs, zs))
        if name in ("hvae", "markov_hvae", "lvae"):
            zs, qs, ps, _, _ = model._pass(xk)
            return sum(log_normal(z.view(k, b, -1), pm.view(k, b, -1), std(plv).view(k, b, -1))
                       - log_normal(z.view(k, b, -1), qm.view(k, b, -1), std(qlv).view(k, b, -1))
                       for z, (qm, qlv), (pm, plv) in zip(zs, qs, ps))
        if name == "convdraw":
            steps = list(model.iterate(xk, "posterior_sample"))
            return sum(log_normal(s["z"].view(k, b, -1), s["p"].mean.view(k, b, -1), s["p"].stddev.view(k, b, -1))
                       - log_normal(s["z"].view(k, b, -1), s["q"].mean.view(k, b, -1), s["q"].stddev.view(k, b, -1))
                       for s in steps)
    raise KeyError(name)


@pytest.mark.parametrize("name", sorted(set(FAMILIES) - {"pixelcnn", "dvae", "dvae_st"}))
def test_importance_weights_by_hand(name, recorded):
    """Each of K = 3 log-weights = log p(x|z) by hand from the logits decoded + log p(z) − log q(z|x) by hand
    at the same draws."""
    model = build(name)
    x = images(model)
    logw = same_draws(lambda: model.log_importance_weights(x, 3))
    logits = [c[1] for c in recorded if c[0] == "px"][-1]
    recorded.clear()
    expected = bernoulli_by_hand(logits.reshape(3, *x.shape), x) + hand_log_weights(name, model, x, 3)
    torch.testing.assert_close(logw, expected, rtol=1e-5, atol=1e-3)


@pytest.fixture
def sampled(monkeypatch):
    """(distribution, the value it drew) of every Normal, Categorical and OneHotCategorical sample, in order."""
    from torch.distributions import OneHotCategorical
    draws = []
    for cls, method in ((Normal, "rsample"), (Normal, "sample"), (Categorical, "sample"),
                        (OneHotCategorical, "sample")):
        original = getattr(cls, method)

        def recording(self, *args, original=original, **kwargs):
            out = original(self, *args, **kwargs)
            draws.append((self, out))
            return out
        monkeypatch.setattr(cls, method, recording)
    return draws


@pytest.mark.parametrize("name", sorted(AIRS))
def test_air_importance_weight_by_hand(name, recorded, sampled):
    """K = 1: log p(x | n objects) by hand at the count n drawn, plus log p − log q by hand of every step's
    where and what (DAIR: class and transformation) up to n, plus log p(n) − log q(n) of the count."""
    model = build(name)
    x = images(model)
    logw = same_draws(lambda: model.log_importance_weights(x, 1)[0])
    kls = [(q, p) for c, q, p in recorded if c == "kl"]
    (_, logits, _), = [c for c in recorded if c[0] == "px"]
    steps = model.cfg.max_steps
    per_step = len(kls) // steps  # where, what (DAIR: where, class, transformation)
    ratio = torch.zeros(B, steps)
    for i in range(steps):
        for q, p in kls[i * per_step:(i + 1) * per_step]:
            q, p = base(q), base(p)
            if isinstance(q, Categorical):  # DAIR's class: one-hot draw of the OneHotCategorical beside it
                c = [v for d, v in sampled if type(d).__name__ == "OneHotCategorical"][i]
                ratio[:, i] += -math.log(q.probs.shape[-1]) - (c * q.logits.log_softmax(-1)).sum(-1)
                continue
            (z,) = [v for d, v in sampled if d is q]
            ratio[:, i] += (log_normal(z[None], p.loc, p.scale) - log_normal(z[None], q.loc, q.scale))[0]
    n = [v for d, v in sampled if type(d) is Categorical][-1]  # the count, drawn after every step
    with torch.no_grad():
        torch.manual_seed(1)
        q_n = model.count_posterior(model.infer(x)).probs
    prior_n = model.count_prior(B, "cpu").probs
    log_px = bernoulli_by_hand(logits.view(steps + 1, B, *x.shape[1:]), x).T.gather(1, n[:, None])[:, 0]
    cum = torch.cat([torch.zeros(B, 1), ratio.cumsum(1)], 1).gather(1, n[:, None])[:, 0]
    expected = log_px + cum + prior_n.gather(1, n[:, None])[:, 0].log() - q_n.gather(1, n[:, None])[:, 0].log()
    # float32 sums of ~550 nats: 1e-3 in all, below 1 % of log q(n) ≈ −0.3 (the likeliest count)
    torch.testing.assert_close(logw, expected, rtol=1e-6, atol=5e-4)


@pytest.mark.parametrize("name", ["progressive_standard", "progressive_rnn", "progressive_quotient",
                                  "progressive_multiple_combined"])
def test_progressive_prefix_terms_by_hand(name, recorded):
    """Every prefix g: prefix_elbo_terms' log p(x | z_≤g) and prefix_log_importance_weights by hand (the
    logits decoded for that prefix, log N(z; 0, 1) − log q(z | x) of groups 1..g at the same draws), and the
    likelihood of a subset of groups at their posterior means."""
    model = build(name)
    x = images(model)
    g_max = model.default_groups
    prefixes = same_draws(lambda: model.prefix_elbo_terms(x))
    logits = [c[1] for c in recorded if c[0] == "px"]
    for g in range(g_max):
        torch.testing.assert_close(prefixes[g].log_px, bernoulli_by_hand(logits[g].view(x.shape), x), rtol=1e-6,
                                   atol=1e-4)
    recorded.clear()
    logw = same_draws(lambda: model.prefix_log_importance_weights(x, 2))  # [G', 2, B]
    logits = [c[1] for c in recorded if c[0] == "px"]
    xk = x.unsqueeze(0).expand(2, *x.shape).reshape(2 * B, *x.shape[1:])
    qs, zs, _ = same_draws(lambda: model._prefix_pass(xk))
    ratio = 0
    for g in range(g_max):
        z, q = zs[g].view(2, B, -1), qs[g]
        ratio = ratio + log_normal(z, 0, torch.ones(())) - log_normal(z, q.mean.view(2, B, -1), q.stddev.view(2, B, -1))
        expected = bernoulli_by_hand(logits[g].view(2, *x.shape), x) + ratio
        torch.testing.assert_close(logw[g], expected, rtol=1e-5, atol=1e-3)
    recorded.clear()
    subset = same_draws(lambda: model.subset_log_likelihood(x, [0, 2 if g_max > 2 else 0]))
    (_, logits, _), = [c for c in recorded if c[0] == "px"]
    assert subset.item() == pytest.approx(bernoulli_by_hand(logits.view(x.shape), x).mean().item(), rel=1e-6)


@pytest.mark.parametrize("name", sorted(AIRS) + ["pixelvae", "pixelvae2"])
def test_free_bits_lift_each_kl_mean_to_the_floor(name):
    """With free bits λ, the loss minus the loss at λ = 0 (same draws) is Σ_j [max(λ, mean_b KL_j) − mean_b KL_j]
    over the KL columns of ``elbo_terms`` (AIR: the count's, each step's weighted by q(n ≥ i); the PixelVAEs,
    whose chapter trains with free bits: one column per latent unit, of both levels for the two-level one):
    λ between the columns' means, so that some are lifted and some not."""
    model = build(name)
    x = images(model)
    means = same_draws(lambda: model.elbo_terms(x)).kl_dims.mean(0)
    floor = means.mean().item()
    expected = (means.clamp(min=floor) - means).sum().item()
    assert expected > 1e-3
    lifted = same_draws(lambda: model.loss(x, free_bits=floor)[0])
    plain = same_draws(lambda: model.loss(x, free_bits=0.0)[0])
    tolerance = 4 * torch.finfo(torch.float32).eps * abs(plain.item())
    assert (lifted - plain).item() == pytest.approx(expected, abs=tolerance)


@pytest.mark.parametrize("name", ["dvae", "dvae_st"])
def test_dvae_marginal_kl_by_hand(name):
    """The D-VAE's batch-marginal regulariser (outside the ELBO): with weight w, the loss minus the loss at w = 0
    (same draws) is w · KL(q̄ ‖ uniform) of the batch-mean class probabilities, by torch's categorical KL."""
    model = build(name)
    x = images(model)
    plain = same_draws(lambda: model.loss(x)[0])
    model.cfg.marginal_weight = 0.5
    regularised, scalars = same_draws(lambda: model.loss(x))
    with torch.no_grad():
        q_bar = model.class_logits(x).softmax(-1).mean(0)
    uniform = torch.full_like(q_bar, 1 / q_bar.numel())
    expected = kl_divergence(Categorical(probs=q_bar), Categorical(probs=uniform)).item()
    assert expected > 1e-6
    assert scalars["marginal_kl"].item() == pytest.approx(expected, rel=1e-3)
    assert (regularised - plain).item() == pytest.approx(0.5 * expected, rel=1e-2, abs=1e-6)


def test_dair_class_marginal_kl_by_hand():
    """DAIR's regulariser outside the ELBO: KL(q̄ ‖ uniform) of the class probabilities averaged over the
    steps the counts use (step i weighted by q(n ≥ i)), with torch's categorical KL; made non-zero by the model's
    non-uniform logits."""
    model = build("dair")
    x = images(model)
    _, scalars = same_draws(lambda: model.loss(x))
    torch.manual_seed(1)
    with torch.no_grad():
        inf = model.infer(x)
        q = model.count_posterior(inf).probs  # [B, T + 1]
    used = q[:, 1:].flip(-1).cumsum(-1).flip(-1)  # q(n ≥ i), i = 1..T
    probs = inf.class_logits.softmax(-1)  # [B, T, K]
    q_bar = (used.unsqueeze(-1) * probs).sum((0, 1)) / used.sum()
    uniform = torch.full_like(q_bar, 1 / q_bar.numel())
    expected = kl_divergence(Categorical(probs=q_bar), Categorical(probs=uniform)).item()
    assert expected > 1e-6
    assert scalars["marginal_kl"].item() == pytest.approx(expected, rel=1e-3)


def test_dair_class_terms_carry_the_exact_gradient_of_the_windows_likelihood():
    """DAIR's class terms are zero-valued; their gradient on step i's class logits is that of
    E_q(c)[f(c)], f(c) = Σ_{n > i} q(n) · (−log p(window | other objects + prototype c)) with the Bernoulli
    written out here: p ⊙ (F − p·F) for F the K codes' costs."""
    model = build("dair")
    x = images(model)
    torch.manual_seed(4)
    inf = model.infer(x)
    q_count = model.count_posterior(inf).probs.detach()
    total = model._class_terms(x, inf, q_count)
    assert total.abs().max() < 1e-5  # zero-valued
    grad, = torch.autograd.grad(total.sum(), inf.class_logits)
    steps, k = model.cfg.max_steps, model.cfg.num_classes
    prefix = model.canvases(inf).detach()
    with torch.no_grad():
        for i in range(steps):
            where = inf.where[:, i]
            comps = model.dvae.components(inf.transforms[:, i])  # [B, K, w·w]
            others = (prefix[:, i + 1:] - inf.objects[:, i].unsqueeze(1)).flatten(0, 1)
            others = model.crop(others, where.repeat_interleave(steps - i, 0)).view(B, steps - i, -1)
            seen = model.crop(x, where).flatten(1)  # [B, w·w]
            costs = []
            for c in range(k):
                probs = (others + comps[:, c:c + 1]).clamp(1e-4, 1 - 1e-4)  # [B, n, w·w]
                nll = -(seen[:, None] * probs.log() + (1 - seen[:, None]) * (1 - probs).log()).sum(-1)
                costs.append((q_count[:, i + 1:] * nll).sum(-1))
            cost = torch.stack(costs, -1)  # [B, K]
            p = inf.class_logits[:, i].softmax(-1)
            expected = p * (cost - (p * cost).sum(-1, keepdim=True))
            torch.testing.assert_close(grad[:, i], expected, rtol=1e-4, atol=1e-5)


def test_dvae_relaxed_kl_term_is_log_q_minus_log_p_of_the_relaxed_sample(monkeypatch):
    """CONCRETE with the relaxed KL: the loss's KL term (loss at KL weight 1 minus at weight 0, same draws) is
    the batch mean of log q(y) − log p(y) at the relaxed sample y the model drew (densities of the relaxed
    posterior at λ₁ and the relaxed uniform prior at λ₂)."""
    from torch.distributions.relaxed_categorical import ExpRelaxedCategorical
    torch.manual_seed(0)
    model = DVAE(DVAEConfig(num_classes=3, hidden=(16,), decoder_hidden=(16,), prototype_init="random",
                            estimator="concrete", relaxed_kl=True, prior_temperature=0.7)).eval()
    x = images(model)
    draws, rsample = [], ExpRelaxedCategorical.rsample
    monkeypatch.setattr(ExpRelaxedCategorical, "rsample",
                        lambda self, *a: draws.append((self, rsample(self, *a))) or draws[-1][1])
    with_kl = same_draws(lambda: model.loss(x, kl_weight=1.0)[0])
    q, y = draws[-1]
    without = same_draws(lambda: model.loss(x, kl_weight=0.0)[0])
    prior = ExpRelaxedCategorical(torch.tensor(0.7), probs=torch.full((B, 3), 1 / 3))
    assert (q.temperature - model.estimator.temperature).abs() < 1e-6
    expected = (q.log_prob(y) - prior.log_prob(y)).mean()
    # a difference of two ~550-nat float32 losses: good to ~1e-4 nats (a 1 % change of the KL moves it 5e-3)
    assert (with_kl - without).item() == pytest.approx(expected.item(), abs=1e-4)


def test_lvae_precision_weighted_posterior_is_the_renormalised_product():
    """The Ladder posterior: precision 1/σ̂² + 1/σ_p², mean (μ̂/σ̂² + μ_p/σ_p²)/precision, written out here;
    and log N(z; μ̂, σ̂²) + log N(z; μ_p, σ_p²) − log q(z) does not depend on z."""
    from c2f.models.layered import precision_weighted
    g = torch.Generator().manual_seed(0)
    mu_hat, lv_hat, mu_p, lv_p = (torch.randn(5, generator=g) for _ in range(4))
    mean, logvar = precision_weighted((mu_hat, lv_hat), (mu_p, lv_p))
    precision = (-lv_hat).exp() + (-lv_p).exp()
    torch.testing.assert_close((-logvar).exp(), precision, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(mean, (mu_hat * (-lv_hat).exp() + mu_p * (-lv_p).exp()) / precision)
    z = torch.randn(7, 5, generator=g)
    diff = Normal(mu_hat, (0.5 * lv_hat).exp()).log_prob(z) + Normal(mu_p, (0.5 * lv_p).exp()).log_prob(z) \
        - Normal(mean, (0.5 * logvar).exp()).log_prob(z)
    torch.testing.assert_close(diff, diff[:1].expand_as(diff), rtol=1e-4, atol=1e-4)


def test_dvae_control_variate_scores_the_same_likelihood_as_the_objective(recorded, monkeypatch):
    """REBAR/RELAX evaluate the D-VAE's −log p(x | z, t) also for their control variate (``f_cv``, with the
    decoder detached): at every one-hot and at a relaxed code both equal the likelihood by hand."""
    model = build("dvae_st")
    x = images(model)
    seen = {}
    forward = type(model.estimator).forward

    def capture(self, logits, f, f_cv=None, context=None, group=None):
        seen.update(f=f, f_cv=f_cv)
        return forward(self, logits, f, f_cv, context, group)
    monkeypatch.setattr(type(model.estimator), "forward", capture)
    same_draws(lambda: model.loss(x))
    codes = [torch.eye(3)[c].expand(B, 3) for c in range(3)] + [torch.tensor([0.2, 0.5, 0.3]).expand(B, 3)]
    for code in codes:
        recorded.clear()
        with torch.no_grad():
            value, cv = seen["f"](code), seen["f_cv"](code)
        logits = [c[1] for c in recorded if c[0] == "px"][-1]
        torch.testing.assert_close(cv, -bernoulli_by_hand(logits.view(x.shape), x), rtol=1e-6, atol=1e-4)
        torch.testing.assert_close(value, cv, rtol=1e-6, atol=1e-4)
