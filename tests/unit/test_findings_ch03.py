"""Chapter 03's findings from small made-up numbers: a clear NLL difference, no difference, the target's
three verdicts, and the codec sentences."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from c2f.codec import CodecPoint
from c2f.experiment import Outcome
from c2f.findings import ch03

NOISE = np.array([0.3, -0.2, 0.1, -0.4, 0.2, 0.0, -0.1, 0.1])


def outcome(name, nll):
    return Outcome(name, [0], runs=[{"test_nll_nats": float(np.mean(nll)), "test_nll_nats_per_image": list(nll)}])


def test_likelihood_gaps_rank_only_outside_the_interval():
    clear = {"mnist": {"convdraw": outcome("convdraw", 90 + NOISE), "vae_same": outcome("vae_same", 93 - NOISE)}}
    assert ch03.likelihood_gaps(clear, 588, 20) == [
        # A − B = −3 + 2·noise: sd 0.454, t(7) = 2.365, half-width 0.38
        "mnist: Conv-DRAW is better than the VAE with 588 latents by 3.0 nats (95 % CI 2.6 to 3.4 over 8 test images, one seed) (test NLL, K = 20)"]
    same = {"mnist": {"convdraw": outcome("convdraw", 90 + NOISE), "vae_same": outcome("vae_same", 90 + NOISE[::-1])}}
    assert "no difference between Conv-DRAW and the VAE with 588 latents" in ch03.likelihood_gaps(same, 588, 20)[0]
    assert ch03.likelihood_gaps({"mnist": {"convdraw": outcome("convdraw", 90 + NOISE)}}, 588, 20) == []


def test_target_verdicts():
    assert ": met in" in ch03.target([85 + NOISE], "default")
    assert "missed by 5.0 nats" in ch03.target([95 + NOISE], "default")
    assert "cannot tell at this budget" in ch03.target([90 + NOISE], "default")
    assert "cannot tell (one seed)" in ch03.target([95.0], "default")


def test_codec_sentences():
    assert "50.0 % of the KL on mnist" in ch03.first_bits({"mnist_convdraw": [3, 1, 1, 1, 1, 1]})
    text = ch03.first_bits({"omniglot_convdraw": [9, 7, 5, 4, 3, 2], "mnist_convdraw": [6.8, 7.7, 7.6, 6.3, 5.0, 4.3]})
    assert "falls with t on omniglot and does not on mnist" in text and "38.5 % of the KL on mnist" in text  # 14.5 / 37.7
    gains = pd.DataFrame({"jpeg": {"PSNR gain (dB)": 2.0, "bytes where it passes Conv-DRAW's best": 80.0},
                          "jpeg2000": {"PSNR gain (dB)": -1.0, "bytes where it passes Conv-DRAW's best": math.nan},
                          "webp": {"PSNR gain (dB)": 0.5, "bytes where it passes Conv-DRAW's best": 60.0}}).T
    best = CodecPoint("convdraw", 6, 50.0, 20.0, 0.8, 0, 0, {"kl_bits": 100.0})
    text = ch03.real_bits(True, gains, best, 100)
    assert "+2.0 and -1.0 dB" in text and "4.0× the KL" in text and "above the target of 2×" in text
    assert "better" not in text
    assert "1.5× the KL" in ch03.rate_over_kl(1.5) and "within the target" in ch03.rate_over_kl(1.5)


def test_fair_rates_sentence():
    """Each codec's container-separated BD-rate with the whole-file and mosaic figures beside it; a codec without
    a common PSNR range is named; the target verdict needs both WebP and AVIF at or below −20 %."""
    summary = {"codec/bd_rate_vs_jpeg": {"mnist": -30.0, "mnist_file": -70.0},
               "codec/bd_rate_vs_webp": {"mnist": -25.0, "mnist_file": -40.0, "mnist_mosaic": -10.0},
               "codec/bd_rate_vs_avif": {"mnist": -21.0}, "codec/max_psnr": {"mnist": 31.0}}
    text = ch03.fair_rates(summary, "mnist")
    assert "jpeg -30.0 % (-70.0 % whole files)" in text and "webp -25.0 % (-40.0 % whole files, -10.0 % mosaic)" in text
    assert "jpeg2000: no PSNR range in common" in text and "is met" in text and "31.0 dB" in text
    summary["codec/bd_rate_vs_avif"] = {"mnist": 15.0}
    assert "is missed" in ch03.fair_rates(summary, "mnist")
    summary["codec/bd_rate_vs_avif"] = {}
    assert "is unmeasured" in ch03.fair_rates(summary, "mnist")
    text = ch03.model_cost(4000, {"jpeg": 100.0, "webp": math.inf}, {"omniglot": -3.0}, 1.5, {"omniglot": 3.0})
    assert "after 100.0 images against jpeg, never against webp" in text and "-3.0 dB on omniglot" in text
    assert "does not rank" in ch03.meaning(0.2, 0.6)
