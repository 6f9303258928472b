"""Conv-DRAW and the codecs: shapes, gradients, a loss that decreases, KL per iteration, IW ≥ ELBO, the
discretized logistic's mass, the learned codec's bit-exact round trip and byte counts, classic codecs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from c2f import codec, plots
from c2f.evaluate import iw_log_likelihood
from c2f.models.convdraw import ConvDRAW, ConvDRAWConfig
from c2f.nn import pixel_likelihood
from c2f.train import TrainConfig, fit

B, T = 4, 3


def model(likelihood="bernoulli", **kw):
    torch.manual_seed(0)
    return ConvDRAW(ConvDRAWConfig(iterations=T, hidden=8, latent_channels=2, read_channels=8,
                                   likelihood=likelihood, **kw))


def binary(n=B, seed=0):
    return torch.bernoulli(torch.full((n, 1, 28, 28), 0.3), generator=torch.Generator().manual_seed(seed))


def grey(n=B, seed=0):
    return (torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed)) * 255).round() / 255


@pytest.mark.parametrize("likelihood,data", [("bernoulli", binary), ("discretized_logistic", grey)])
def test_shapes_and_kl_per_iteration(likelihood, data):
    m, x = model(likelihood), data()
    t = m.elbo_terms(x)
    assert t.log_px.shape == t.kl.shape == (B,) and t.kl_dims.shape == (B, T)
    assert (t.kl_dims >= 0).all()
    torch.testing.assert_close(t.kl_dims.sum(-1), t.kl)
    torch.testing.assert_close(t.elbo, t.log_px - t.kl)
    assert m.log_importance_weights(x, 5).shape == (5, B)
    assert m.latent_means(x).shape == (B, m.cfg.total_latents)
    recs = m.reconstructions(x)
    assert len(recs) == T and all(r.shape == x.shape and 0 <= r.min() and r.max() <= 1 for r in recs)
    assert m.continue_from_prior(x, 1, "prior_sample").shape == x.shape and m.sample(3).shape == (3, *x.shape[1:])
    steps = list(m.iterate(x, "posterior_mean"))
    assert len(steps) == T
    assert steps[0]["q"].mean.shape == steps[0]["p"].stddev.shape == (B, m.cfg.latents_per_iteration)
    t2 = m.elbo_terms(x, groups=2)
    assert (t2.kl_dims[:, 2:] == 0).all()


def test_log_variances_are_bounded_softly():
    """An extreme head output gives a log-variance just inside ±logvar_bound, never beyond it."""
    m = model(logvar_bound=4.0)
    with torch.no_grad():
        m.prior_head.bias[2:] = 1e4  # the log-variance channels
        m.posterior_head.bias[2:] = -1e4
    step = next(m.iterate(binary()))
    torch.testing.assert_close(step["p"].variance.log(), torch.full_like(step["z"], 4.0))
    torch.testing.assert_close(step["q"].variance.log(), torch.full_like(step["z"], -4.0))


def test_gradients_reach_every_parameter():
    m = model()
    loss, _ = m.loss(binary())
    loss.backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing


def test_training_lowers_the_loss(make_images):
    images = make_images(64)
    m = model()
    before = m.loss(images.x)[0].item()
    fit(m, images, TrainConfig(epochs=6, batch_size=32, lr=3e-3))
    assert m.loss(images.x)[0].item() < before - 20


def test_importance_weighting_is_at_least_the_elbo():
    m, x = model(), binary(8)
    torch.manual_seed(1)
    elbo = torch.stack([m.elbo_terms(x).elbo for _ in range(20)]).mean(0)
    iw = iw_log_likelihood(m, x, 50)
    assert iw.mean() >= elbo.mean()


def test_discretized_logistic_is_a_probability_mass():
    levels = torch.arange(256.0).view(256, 1, 1, 1) / 255
    for loc, log_scale in [(0.3, -3.0), (0.0, -1.0), (1.0, -6.0), (0.5, -9.0)]:
        params = torch.tensor([loc, log_scale]).view(1, 2, 1, 1).expand(256, 2, 1, 1)
        mass = pixel_likelihood(params, "discretized_logistic").log_prob(levels).exp().sum()
        torch.testing.assert_close(mass, torch.tensor(1.0), atol=1e-4, rtol=0)


def quantiser(m, delta=1.0, **kw):
    """A quantiser fitted on other images; the untrained model's KLs are tiny, so a low skip threshold."""
    return codec.fit_quantiser(m, grey(8, seed=5), delta, **{"skip_nats": 1e-4, **kw})


@pytest.mark.parametrize("likelihood,data", [("bernoulli", binary), ("discretized_logistic", grey)])
@pytest.mark.parametrize("kw", [{"skip_nats": 1e-4}, {"levels": 1, "skip_nats": 0.0}])  # KL-aware; fixed grid Δ σ_p
def test_codec_round_trip_is_bit_exact(likelihood, data, kw):
    m, x = model(likelihood), data()
    for t, delta in [(1, 1.0), (T, 0.5)]:
        qz = quantiser(m, delta, **kw)
        streams, sent = codec.encode(m, x, t, qz)
        images, read = codec.decode(m, streams, qz)
        assert len(sent) == len(read) == t
        assert all(np.array_equal(a, b) for s, r in zip(sent, read) for a, b in zip(s, r))
        assert torch.equal(images, codec.reconstruct_quantised(m, x, t, qz))
        for s in streams:  # header + whole 32-bit words of the coder
            assert (len(s) - codec.HEADER.size) % 4 == 0 and codec.HEADER.unpack(s[:2]) == (t, int(16 * delta))
    # more iterations cost more bytes; a finer grid costs more bytes
    q1 = quantiser(m, 1.0, **kw)
    n1 = sum(map(len, codec.encode(m, x, 1, q1)[0]))
    assert n1 < sum(map(len, codec.encode(m, x, T, q1)[0]))
    assert n1 < sum(map(len, codec.encode(m, x, 1, quantiser(m, 0.25, **kw))[0]))
    with pytest.raises(ValueError):
        codec.encode(m, x, T + 1, q1)
    with pytest.raises(ValueError, match="Δ"):
        codec.decode(m, codec.encode(m, x, 1, q1)[0], quantiser(m, 2.0, **kw))


def test_quantiser_levels_known_answers():
    """A latent whose posterior is the prior is skipped (level 0, ẑ = μ_p); one with σ_q = σ_p / 4 and a mean 3 σ_p
    away gets level 3, a grid of step Δ σ_p / 4 around μ_p, k = round(3 / (Δ/4)); ratios beyond the last level
    are clipped to it."""
    from torch.distributions import Independent, Normal

    p = Independent(Normal(torch.tensor([[1.0, 1.0, 1.0]]), torch.tensor([[2.0, 2.0, 2.0]])), 1)
    q = Independent(Normal(torch.tensor([[1.0, 7.0, 1.0 + 2.0 * 0.3]]), torch.tensor([[2.0, 0.5, 2.0 / 1000]])), 1)
    qz = codec.Quantiser(delta=1.0, levels=4, skip_nats=0.05)
    level, k = qz.choose(q, p)
    assert level.tolist() == [[0.0, 3.0, 4.0]] and k.tolist() == [[0.0, 12.0, 2.0]]  # 0.6 / (2 / 8) = 2.4 → 2
    z = qz.rebuild(level, k, p)
    assert z.tolist() == [[1.0, 1.0 + 12 * 0.5, 1.0 + 2 * 0.25]]
    assert qz.scales(level, p).tolist() == [[1.0, 4.0, 8.0]]


def test_latents_at_the_prior_cost_no_bits():
    """When every latent is skipped the stream holds only the level symbols, each nearly certain under the fitted
    table (under one 32-bit word), and the receiver's image is the prior-mean continuation."""
    m, x = model("discretized_logistic"), grey()
    qz = quantiser(m, 1.0, skip_nats=1e9)
    streams, _ = codec.encode(m, x, T, qz)
    assert all(len(s) <= codec.HEADER.size + 4 for s in streams)
    images, _ = codec.decode(m, streams, qz)
    with torch.no_grad():
        assert torch.equal(images, m.image(list(m.iterate(x, "prior_mean"))[-1]["canvas"]))


def test_model_curve_reports_consistent_points():
    """Bytes, the three rates (payload = file − the 2-byte header; the mosaic: one stream for all images), the
    round trip, and the KL along the codec's own path, recomputed here by hand."""
    from torch.distributions import kl_divergence

    m, x = model("discretized_logistic"), grey(6)
    qz = quantiser(m)
    points = codec.model_curve(m, x, qz)
    assert [p.setting for p in points] == list(range(1, T + 1))
    assert all(p.extra["round_trip"] for p in points)
    streams, _ = codec.encode(m, x, 2, qz)
    assert points[1].bytes == np.mean([len(s) for s in streams]) and points[1].bits == 8 * points[1].bytes
    assert points[1].payload_bytes == points[1].bytes - 2 and points[1].mosaic_psnr == points[1].psnr
    assert points[1].mosaic_bytes < points[1].bytes  # one header and one final word for all six images
    kls = []

    def rule(i, q, p):
        kls.append(kl_divergence(q, p))
        return qz.rebuild(*qz.choose(q, p), p) if i < 2 else p.mean

    with torch.no_grad():
        list(m.iterate(x, rule))
    by_hand = (kls[0] + kls[1]).mean().item() / np.log(2)
    assert points[1].extra["kl_bits"] == pytest.approx(by_hand, rel=1e-6) and by_hand > 0


@pytest.mark.parametrize("name", sorted(codec.CLASSIC))
def test_classic_codecs_return_sizes_and_images(name):
    images = codec.to_uint8(grey(3))
    points = codec.classic_curve(images, name, codec.CLASSIC[name][1][::4])
    assert all(p.bytes > 0 and np.isfinite(p.psnr) and -1 <= p.ssim <= 1 for p in points)
    data = codec.classic_encode(images[0], name, codec.CLASSIC[name][1][-1])
    assert codec.classic_decode(data).shape == images[0].shape and codec.classic_decode(data).dtype == np.uint8


def digits(n=6):
    """Digit-like 8-bit images: a bright blob on black, so that the codecs' files differ with the setting."""
    yy, xx = np.mgrid[:28, :28]
    rng = np.random.default_rng(0)
    out = [np.clip(255 * np.exp(-((yy - rng.integers(8, 20)) ** 2 + (xx - rng.integers(8, 20)) ** 2) / 30)
                   + rng.normal(0, 20, (28, 28)), 0, 255) for _ in range(n)]
    return np.stack(out).round().astype(np.uint8)


def test_jpeg2000_settings_give_distinct_files():
    """Every JPEG 2000 setting is a real point on 28×28 images: distinct sizes and PSNRs rising with the setting
    (a target compression ratio gave one 173-byte file for every ratio from 6 to 400)."""
    points = codec.classic_curve(digits(), "jpeg2000")
    sizes = [p.bytes for p in points]
    assert len(set(sizes)) >= len(points) - 2 and sizes == sorted(sizes)
    assert points[-1].psnr > points[0].psnr + 15


@pytest.mark.parametrize("name", sorted(codec.CLASSIC))
def test_fair_rates_of_the_classic_codecs(name):
    """The payload is the file minus the file of a blank image at the same setting, recomputed here by hand; the
    mosaic's rate is its one file over the images, its PSNR that of its decoded tiles."""
    images = digits(4)
    setting = codec.CLASSIC[name][1][len(codec.CLASSIC[name][1]) // 2]
    (point,) = codec.classic_curve(images, name, [setting])
    blank = len(codec.classic_encode(np.zeros((28, 28), np.uint8), name, setting))
    files = [codec.classic_encode(im, name, setting) for im in images]
    assert point.payload_bytes == pytest.approx(np.mean([len(f) for f in files]) - blank)
    whole = codec.classic_encode(codec.mosaic(images), name, setting)
    assert point.mosaic_bytes == len(whole) / 4 and point.rate("mosaic")[0] == 8 * len(whole) / 4
    assert point.rate("payload") == (8 * point.payload_bytes, point.psnr)
    tiles = codec.unmosaic(codec.classic_decode(whole), 4, 28, 28)
    assert point.mosaic_psnr == codec.distortion(images, tiles)["psnr"]
    with pytest.raises(ValueError, match="payload"):
        point.rate("container")


def test_mosaic_round_trip():
    images = digits(5)
    m = codec.mosaic(images)
    assert m.shape == (3 * 28, 2 * 28 + 28) or m.shape == (2 * 28, 3 * 28)
    assert np.array_equal(codec.unmosaic(m, 5, 28, 28), images) and m[-28:, -28:].max() == 0


def test_bd_rate_known_answers():
    """A curve with every rate 0.8 × the reference's at the same PSNRs is exactly −20 %; by hand, two straight
    lines in log-rate: the reference rises tenfold from 20 to 30 dB (100 → 1000 bits) and the test stays at 100
    bits, so the mean log10 ratio over 20–30 dB is −0.5 and the BD-rate 100 (10^−0.5 − 1) = −68.38 %; only the
    common PSNR range counts; disjoint ranges give NaN; the sign flips with the roles."""
    ref = [(100.0, 20.0), (180.0, 24.0), (400.0, 29.0), (900.0, 33.0), (2000.0, 38.0)]
    assert codec.bd_rate(ref, [(0.8 * r, q) for r, q in ref]) == pytest.approx(-20.0, abs=1e-9)
    assert codec.bd_rate([(0.8 * r, q) for r, q in ref], ref) == pytest.approx(25.0, abs=1e-9)
    line = [(100.0, 20.0), (1000.0, 30.0)]
    assert codec.bd_rate(line, [(100.0, 20.0 - 1e-9), (100.0 + 1e-7, 30.0)]) == pytest.approx(-68.377, abs=1e-3)
    assert codec.bd_rate(line, [(50.0, 25.0), (500.0, 35.0)]) == pytest.approx(
        100 * (10 ** (np.mean(np.log10(50 * 10 ** ((np.linspace(25, 30, 10001) - 25) / 10)) - np.log10(
            100 * 10 ** ((np.linspace(25, 30, 10001) - 20) / 10)))) - 1), abs=1e-3)  # over 25–30 dB only: −84.2 %
    assert np.isnan(codec.bd_rate(line, [(10.0, 31.0), (20.0, 40.0)]))
    assert np.isnan(codec.bd_rate(line, [(10.0, 25.0)]))


def test_distortion_known_answers():
    a = np.zeros((2, 28, 28), np.uint8)
    b = a.copy()
    b[:, 0, 0] = 255  # one pixel wrong per image: MSE = 255² / 784
    d = codec.distortion(a, b)
    assert abs(d["psnr"] - 10 * np.log10(784)) < 1e-9
    assert codec.distortion(a, a)["ssim"] == 1.0
    pts = [codec.CodecPoint("x", 0, 10, 20.0, 0, 0, 0), codec.CodecPoint("x", 1, 20, 30.0, 0, 0, 0)]
    assert codec.psnr_at_bits(pts, 120) == 25.0 and np.isnan(codec.psnr_at_bits(pts, 10))


def test_pareto_and_closest_below():
    P = codec.CodecPoint
    pts = [P("a", 0, 10, 20.0, 0, 0, 0), P("a", 1, 12, 19.0, 0, 0, 0), P("a", 2, 15, 25.0, 0, 0, 0)]
    assert [p.setting for p in codec.pareto(pts)] == [0, 2]
    assert codec.closest_below(pts, 8 * 13).setting == 1 and codec.closest_below(pts, 1).setting == 0
    images = codec.to_uint8(grey(2))
    decoded, size = codec.classic_roundtrip(images, "webp", 50)
    assert decoded.shape == images.shape and size > 0


def test_effect_consistency_known_answers():
    from c2f.evaluate import effect_consistency

    before = torch.zeros(3, 1, 2, 2)
    same = before + torch.tensor([[1.0, 0], [0, 0]])
    assert abs(effect_consistency(before, same) - 1) < 1e-12
    flipped = same.clone()
    flipped[1] *= -1  # pairs (0,1), (1,2) opposite, (0,2) equal: mean cosine (−1 −1 +1) / 3
    assert abs(effect_consistency(before, flipped) + 1 / 3) < 1e-12
    orthogonal = torch.eye(4).view(4, 1, 2, 2)
    assert abs(effect_consistency(torch.zeros(4, 1, 2, 2), orthogonal)) < 1e-12


def test_decode_latents_matches_the_posterior_mean_path():
    m, x = model(), binary()
    zs = [s["z"] for s in m.iterate(x, "posterior_mean")]
    torch.testing.assert_close(m.decode_latents(zs), m.reconstruct(x))


def test_low_rate_gains_known_answers():
    """Against each classic codec's lowest rate: the learned codec's best point not above it, its PSNR gain, and
    where the classic codec passes the learned codec's best PSNR; NaN where the learned codec cannot go so low
    or the classic codec never passes it."""
    P = codec.CodecPoint
    front = [P("convdraw", 1, 10, 20.0, 0, 0, 0), P("convdraw", 2, 30, 26.0, 0, 0, 0)]
    classic = {"jpeg": [P("jpeg", 1, 12, 15.0, 0, 0, 0), P("jpeg", 5, 40, 25.0, 0, 0, 0),
                        P("jpeg", 9, 60, 30.0, 0, 0, 0)],
               "tiny": [P("tiny", 0, 5, 18.0, 0, 0, 0)]}
    rows = codec.low_rate_gains(front, classic)
    assert rows["jpeg"]["Conv-DRAW bytes"] == 10 and rows["jpeg"]["PSNR gain (dB)"] == 5.0
    assert rows["jpeg"]["bytes where it passes Conv-DRAW's best"] == 60
    assert np.isnan(rows["tiny"]["PSNR gain (dB)"]) and np.isnan(rows["tiny"]["bytes where it passes Conv-DRAW's best"])


def test_gain_metrics_keep_the_finite_gains():
    rows = {"jpeg": {"PSNR gain (dB)": 5.0}, "tiny": {"PSNR gain (dB)": float("nan")},
            "webp": {"PSNR gain (dB)": -1.5}}
    assert codec.gain_metrics(rows) == {"psnr_gain_vs_jpeg@low": 5.0, "psnr_gain_vs_webp@low": -1.5}


def test_accounting_known_answers():
    """At the learned codec's best PSNR (26 dB at 30 bytes) JPEG needs 35 bytes (halfway from 25 dB at 30 B to
    27 dB at 40 B): 5 bytes saved per image, so a 1,000-byte model pays off after 200 images; a codec that needs
    fewer bytes never pays it off, one that never reaches that PSNR gives NaN; times are the mean per image."""
    P = codec.CodecPoint
    front = [P("convdraw", 1, 10, 20.0, 0, 1.0, 2.0), P("convdraw", 2, 30, 26.0, 0, 3.0, 4.0)]
    classic = {"jpeg": [P("jpeg", 1, 30, 25.0, 0, 1.0, 1.0), P("jpeg", 5, 40, 27.0, 0, 3.0, 2.0)],
               "cheap": [P("cheap", 1, 10, 22.0, 0, 0, 0), P("cheap", 2, 20, 30.0, 0, 0, 0)],
               "weak": [P("weak", 1, 10, 15.0, 0, 0, 0), P("weak", 2, 20, 18.0, 0, 0, 0)]}
    rows = codec.accounting(front, classic, 1000)
    assert rows["jpeg"]["bytes at Conv-DRAW's best PSNR"] == 35.0 and rows["jpeg"]["saving per image (bytes)"] == 5.0
    assert rows["jpeg"]["images until the model pays off"] == 200.0
    assert rows["jpeg"]["encode (ms/image)"] == 2.0 and rows["jpeg"]["decode (ms/image)"] == 1.5
    assert rows["cheap"]["saving per image (bytes)"] < 0
    assert rows["cheap"]["images until the model pays off"] == float("inf")
    assert np.isnan(rows["weak"]["bytes at Conv-DRAW's best PSNR"])
    assert rows["convdraw"] == {"bytes at Conv-DRAW's best PSNR": 30, "encode (ms/image)": 2.0, "decode (ms/image)": 3.0}


def test_codec_curves_metrics_figure_and_equal_rate_rows():
    m, x = model("discretized_logistic"), grey(2)
    quantisers = [quantiser(m, 1.0), quantiser(m, 2.0)]
    learned, classic, front = codec.codec_curves(m, x, quantisers)
    assert sorted(learned) == ["d1.0_s0.0001_l6", "d2.0_s0.0001_l6"] and sorted(classic) == sorted(codec.CLASSIC)
    assert front == codec.pareto(learned["d1.0_s0.0001_l6"] + learned["d2.0_s0.0001_l6"])
    metrics = codec.curve_metrics(learned, classic, "mnist")
    assert metrics["codec/convdraw_d2.0_s0.0001_l6/mnist"]["kl_bits@2"] == learned["d2.0_s0.0001_l6"][1].extra["kl_bits"]
    assert metrics["codec/webp/mnist"]["payload_bits@0"] == classic["webp"][0].rate("payload")[0]
    summary = codec.summary_metrics(front, classic, "mnist")
    assert summary["codec/max_psnr"] == {"mnist": front[-1].psnr}
    assert summary["codec/rate_over_kl"]["mnist"] == front[-1].bits / front[-1].extra["kl_bits"]
    for c in codec.CLASSIC:  # present exactly where the curves overlap, equal to bd_rate
        expected = codec.bd_rate([p.rate("payload") for p in classic[c]], [p.rate("payload") for p in front])
        assert summary[f"codec/bd_rate_vs_{c}"].get("mnist", float("nan")) == pytest.approx(expected, nan_ok=True)
    assert metrics["codec/jpeg/mnist"][f"bits@{classic['jpeg'][0].setting}"] == classic["jpeg"][0].bits
    assert len(plots.rate_distortion(learned, classic, front, "test").axes) == len(codec.RATES)
    rows, labels, target = codec.equal_rate_rows(m, x, front, classic, quantisers)
    assert len(rows) == len(labels) == 2 + len(codec.CLASSIC) and all(r.shape == x.shape for r in rows)
    assert target == min(p.bits for p in classic["jpeg"]) and labels[0] == "data"
