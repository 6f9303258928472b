"""Compare a run's metrics with a reference record, with one tolerance per kind of metric.

The smoke references in ``tests/notebooks`` are compared with fresh runs by the regression tests, and
``make refs`` prints what a regeneration moved. Both use :func:`diff_metrics` and the table
:data:`TOLERANCES`: every metric name must match one of its rows (an unmatched name is itself a
deviation, so a new chapter has to decide how precise each of its numbers is).

The tolerances come from the measured spread of the smoke profiles between "machines": the same code and
seed run with torch's CPU kernels capped at AVX2 and at the baseline ISA (``ATEN_CPU_CAPABILITY``,
``ONEDNN_MAX_CPU_ISA``, ``MKL_ENABLE_INSTRUCTIONS``), with two threads instead of one, and natively on an
AVX-512 CPU. A value passes when ``|new - reference| <= abs + rel * |reference|``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Tolerance:
    """Metrics whose full name matches `pattern` may move by ``abs + rel * |reference|``; `spread` is the
    largest difference measured between machines, the justification of the bound."""

    pattern: str
    abs: float
    rel: float = 0.0
    spread: float = 0.0
    kind: str = ""

    def allows(self, expected: float, got: float) -> bool:
        return abs(got - expected) <= self.abs + self.rel * abs(expected)


# First matching row wins. `spread`: the largest difference measured between those runs for the metrics of
# the row (any chapter, model or seed); the tolerance is about three times that, rounded up (10 to 50 times
# where the spread is at rounding level), or one unit of a count.
TOLERANCES: list[Tolerance] = [
    # wall-clock timings (seconds) depend on the machine and its load: recorded, never compared
    Tolerance(r".*(_s_per_\w+|_s)", math.inf, kind="wall-clock timings (seconds): not compared"),
    # a unit whose KL sits at the 0.01-nat threshold, or a cluster holding a few images, flips between CPU
    # kernels (measured: 1 active unit in chapters 01 and 04); a mean over n seeds then moves by 1/n
    Tolerance(r".*/((kl_)?active_units(_kl)?(_layer_\d+)?|clusters_used)(_std|_worst)?", 1.0, spread=1.0,
              kind="counts: active units, clusters used"),
    # chapter 05's toy problem: the expected loss is 0.2222 at the uniform start and 0.2178 at the optimum
    Tolerance(r"toy/.*/final_loss(_std)?", 1e-6, spread=4.5e-8, kind="toy estimators: final expected loss"),
    Tolerance(r"toy/.*/final_log_variance", 1e-4, spread=1.9e-6, kind="toy estimators: log-variance of the gradient"),
    Tolerance(r"toy/.*/mean_abs_error_x1000", 1e-4, spread=4.3e-6, kind="toy estimators: gradient error ×1000"),
    Tolerance(r"toy/.*/gap_left", 1e-4, spread=1.0e-5, kind="toy estimators: share of the gap to the optimum left"),
    Tolerance(r"toy/concrete_bias/.*/(cosine|exact_loss|relaxed_loss)", 1e-5, spread=1.8e-7,
              kind="toy: CONCRETE bias direction, exact and relaxed losses"),
    Tolerance(r"toy/concrete_bias/.*/relative_bias(_se)?", 1e-4, spread=1.9e-6, kind="toy: CONCRETE relative bias"),
    Tolerance(r"toy/(rebar|relax)/final_(eta|temperature)", 1e-5, spread=6.0e-8, kind="toy: REBAR's learned η and τ"),
    Tolerance(r"toy/rebar_grid/\w+", 1e-4, spread=0.0, kind="toy: REBAR's variance over a grid of (τ, η)"),
    # chapter 07's objects, scored on 64 smoke scenes (one scene is 1/64 of an accuracy); measured spread 0 and
    # 1.2e-3 (box IoU)
    Tolerance(r"(air|dair)\w*/multi_mnist/(three/|train/)?(sampled_)?(count|class)_accuracy(_\d|_of_counting_runs)?"
              r"(_std|_worst)?", 0.05,
              kind="objects: count and class accuracies over test scenes"),
    Tolerance(r"(air|dair)\w*/multi_mnist/(three/)?(recall|precision|f1|box_iou|over_count|under_count|"
              r"first_object_ink)(_std|_worst)?", 0.05, spread=1.2e-3,
              kind="objects: digits found, windows on a digit, F1, their box IoU, over/under-counts, ink share"),
    # chapter 07's smoke scenes are 50 x 50 pixels scored by barely trained models (~900-1300 nats): the ELBO
    # and NLL moved by up to 3.3 nats between CPU kernels (DAIR's sampled classes and counts amplify them)
    Tolerance(r"(air|dair)\w*/multi_mnist/test_(elbo|nll)_nats(_std|_worst)?", 10.0, spread=3.3,
              kind="objects: ELBO, NLL of a scene (nats)"),
    Tolerance(r"(air|dair)\w*/multi_mnist/success_rate(_std|_worst)?", 0.01,
              kind="objects: fraction of runs that learn to count (exact: one run moves it by 1/n)"),
    Tolerance(r".*accuracy(_std|_worst)?", 0.01, spread=0.0024, kind="accuracies (fraction of test images)"),
    # discrete latents trained with sampled gradients (Concrete, REINFORCE, ...) drift furthest
    Tolerance(r"dvae.*/test_kl_nats(_std)?", 0.75, spread=0.22, kind="D-VAE: KL (nats)"),
    Tolerance(r"dvae.*_nats(_std|_worst)?", 1.5, spread=0.43, kind="D-VAE: ELBO, NLL (nats)"),
    # chapter 03's codecs: Pillow's encoders are deterministic for given images; Conv-DRAW's bitstream can
    # gain or lose a few bytes when a latent near a quantisation edge moves (spread 0 in the smoke runs)
    Tolerance(r"codec/(jpeg|jpeg2000|webp|avif)/.*/(payload_|mosaic_)?bits@[\d.]+", 0.5,
              kind="classic codecs: bits per image: file, container separated, in a mosaic (exact)"),
    Tolerance(r"codec/(jpeg|jpeg2000|webp|avif)/.*/(mosaic_)?(psnr|ssim)@[\d.]+", 1e-4,
              kind="classic codecs: PSNR (dB), SSIM"),
    Tolerance(r"codec/convdraw[\w.]*/.*/(payload_|mosaic_)?bits@\d+", 16.0,
              kind="learned codec: bits per image (two bytes)"),
    Tolerance(r"codec/convdraw[\w.]*/.*/kl_bits@\d+", 1e-5, spread=2.6e-7, kind="learned codec: KL rate (bits)"),
    Tolerance(r"codec/convdraw[\w.]*/.*/((mosaic_)?psnr@\d+|ssim@\d+|psnr_gain_vs_\w+@low)", 0.01,
              kind="learned codec: PSNR (dB), SSIM, PSNR gain"),
    Tolerance(r"codec/convdraw/(model_bytes|.*/round_trip_exact)", 0.5,
              kind="learned codec: size in bytes, exact round trip (exact)"),
    Tolerance(r"codec/max_psnr/\w+", 0.01, kind="learned codec: highest PSNR of its curve (dB)"),
    # a rate moves by up to two bytes per image (above); the ratios and BD-rates built from rates, by analogy
    Tolerance(r"codec/rate_over_kl/\w+", 0.0, rel=0.05, kind="learned codec: real rate over its KL (by analogy)"),
    Tolerance(r"codec/bd_rate_vs_\w+/\w+", 2.0, kind="BD-rate against a standard codec (percent; by analogy)"),
    Tolerance(r"meaning/.*/cosine@\d+", 1e-4, spread=6.2e-6, kind="consistency of a latent's effect (cosine)"),
    Tolerance(r".*/parameters(_std)?", 0.5, kind="parameter counts (exact)"),
    # chapter 06: shares of samples (groups of 5; 40 samples per seed in the smoke profile, so one sample is
    # 0.025) that keep their group's class under the MNIST classifier (by analogy with the accuracies)
    Tolerance(r".*/class_(kept_fixed_z|kept_fixed_noise|chance)(_std|_worst)?", 0.05,
              kind="shares of samples keeping their class, its chance level (by analogy)"),
    # chapter 06: mean numbers of pixels that change when the noise, z or the image is redrawn
    Tolerance(r".*/pixels_(between_test_images|changed_by_noise|changed_by_z)", 2.0,
              kind="pixels changed by a redraw (mean count)"),
    Tolerance(r".*/(kl_layer_\d+|kl_group_\d+|kl_iter_\d+|kl_part_\d+)(_std)?", 0.01, spread=0.0032,
              kind="KL of one layer, group, iteration or part of latents (nats)"),
    Tolerance(r".*/(test_)?kl_nats(_std|_worst)?", 0.15, spread=0.05, kind="KL of a model (nats)"),
    Tolerance(r".*/(test_|train_|completed_)?(elbo|nll|recon|log_likelihood)_nats(@\d+)?(_std|_worst)?", 0.6,
              spread=0.19, kind="ELBO, NLL, reconstruction (nats)"),
    # chapter 08's coarse-to-fine measure: the rate and distortion of each prefix of a code, and the class
    # accuracy of a linear probe on it (spread: chapter 08's smoke profile native, AVX2, baseline ISA and two
    # threads; one of its 100 test images is 0.01 of accuracy)
    Tolerance(r".*/prefix_kl_nats@\d+(_std)?", 0.01, spread=0.0024, kind="KL of a prefix of a code (nats)"),
    Tolerance(r".*/prefix_recon_nats@\d+(_std|_worst)?", 0.25, spread=0.07, kind="distortion of a prefix of a code (nats)"),
    Tolerance(r".*/probe_accuracy@\d+(_std|_worst)?", 0.03, spread=0.01, kind="linear-probe class accuracy of a prefix"),
    # chapter 08's decoded measure (images decoded from a sampled prefix, classified; by analogy with the rows
    # above: the same test images, a few draws): accuracies, their area over log-rate, the rate reaching one,
    # the prefix's KL and distortion, and the probe's input size with its random-projection control
    Tolerance(r".*/(control|decoded(_class)?)_accuracy@[\d.]+(_std|_worst)?", 0.03,
              kind="class accuracy of decoded images, of the probe's control (by analogy)"),
    Tolerance(r".*/decoded_accuracy_area@[\d.]+(_std|_worst)?", 0.1, kind="area under accuracy over log-rate (by analogy)"),
    Tolerance(r".*/rate_to_accuracy@[\d.]+(_std|_worst)?", 0.25, kind="rate reaching an accuracy (nats; by analogy)"),
    Tolerance(r".*/decoded_kl_nats@[\d.]+(_std)?", 0.01, kind="KL of a decoded prefix (nats; by analogy)"),
    Tolerance(r".*/decoded_recon_nats@[\d.]+(_std|_worst)?", 0.25, kind="distortion of a decoded prefix (nats; by analogy)"),
    Tolerance(r".*/probe_features@[\d.]+(_std)?", 0.5, kind="size of the probed part (exact)"),
    # the rows below were set by analogy with the measured rows above (their spread was not measured)
    Tolerance(r".*/(log_px_first\d+_(learned|random)|curve_nll_gap_(last_two_k|table_k))", 0.6,
              kind="log-likelihood of a prefix, NLL-versus-K gaps (nats; by analogy)"),
    Tolerance(r".*/(class_change_layer_\d+|samples_confident(_stage\d+|_step_\d+)?|"
              r"recon_class_accuracy_(stage\d+|step_\d+))(_std)?", 0.02,
              kind="fractions of images under the MNIST classifier (by analogy)"),
    Tolerance(r"latent_correlation/.*/mean_abs_offdiag", 0.01, kind="mean |off-diagonal correlation| (by analogy)"),
    Tolerance(r".*/median_precision_\w+", 0.0, rel=0.02, kind="posterior precisions (relative; by analogy)"),
    Tolerance(r".*bits_per_dim(_std|_worst)?", 1e-3, spread=1.7e-4, kind="bits per dimension"),
    Tolerance(r".*/test_(sq_error|l1)(@\d+|_stage\d+|_step_\d+)", 0.2, spread=0.063,
              kind="reconstruction errors (sum over pixels)"),
    # PCA-AE's covariance moved by 1.8e-3 between two machines of this project (AVX2 caps had moved it 2.8e-4)
    Tolerance(r".*/mean_abs_offdiag_cov", 6e-3, spread=1.8e-3, kind="mean |off-diagonal covariance| of codes"),
]


@lru_cache(maxsize=None)
def tolerance_for(name: str) -> Tolerance | None:
    """The first row of :data:`TOLERANCES` whose pattern matches the whole metric name."""
    return next((t for t in TOLERANCES if re.fullmatch(t.pattern, name)), None)


@dataclass(frozen=True)
class Change:
    """One metric that differs between a reference and a new run. `outside` is True when the difference
    exceeds the tolerance, the metric is missing or new, or no row of the table covers it."""

    name: str
    old: float | None
    new: float | None
    tolerance: Tolerance | None
    outside: bool

    def __str__(self) -> str:
        if self.old is None or self.new is None:
            return f"{self.name}: {'new metric' if self.old is None else 'missing'}"
        if self.tolerance is None:
            return f"{self.name}: {self.old:.6g} -> {self.new:.6g}: no row of c2f.book.compare.TOLERANCES matches"
        tol = self.tolerance.abs + self.tolerance.rel * abs(self.old)
        verdict = "OUTSIDE" if self.outside else "within"
        return f"{self.name}: {self.old:.6g} -> {self.new:.6g} ({self.new - self.old:+.3g}; {verdict} ±{tol:.3g})"


def _single_seed_std(name: str, params: dict | None) -> bool:
    return name.endswith("_std") and (params or {}).get("n_seeds") == 1


def diff_metrics(reference: dict[str, float], new: dict[str, float], params: dict | None = None) -> list[Change]:
    """Every metric that differs (or has no tolerance), in name order. The ``_std`` of a single seed
    (``params["n_seeds"] == 1``) is not compared."""
    changes = []
    for name in sorted(reference.keys() | new.keys()):
        if _single_seed_std(name, params):
            continue
        old, got = reference.get(name), new.get(name)
        tol = tolerance_for(name)
        if old is None or got is None:
            changes.append(Change(name, old, got, tol, True))
        elif tol is None:
            changes.append(Change(name, old, got, None, True))
        elif not (old == got or (math.isnan(old) and math.isnan(got))):
            changes.append(Change(name, old, got, tol, not tol.allows(old, got)))
    return changes


def compare_metrics(reference: dict[str, float], new: dict[str, float], params: dict | None = None) -> list[Change]:
    """The deviations: metrics outside their tolerance, missing, new, or matched by no row of the table."""
    return [c for c in diff_metrics(reference, new, params) if c.outside]


def describe_changes(reference: dict[str, float], new: dict[str, float], params: dict | None = None) -> str:
    """What moved between two runs, one line per metric, the deviations first (for ``make refs``)."""
    changes = sorted(diff_metrics(reference, new, params), key=lambda c: not c.outside)
    if not changes:
        return "  no metric moved"
    outside = sum(c.outside for c in changes)
    lines = [f"  {len(changes)} metric(s) moved, {outside} outside their tolerance:"]
    return "\n".join(lines + [f"    {c}" for c in changes])


def tolerance_table() -> str:
    """:data:`TOLERANCES` as the Markdown table of the book's appendix (a unit test keeps the two the same)."""
    rows = ["| metrics | pattern | tolerance | measured spread |", "|---|---|---|---|"]
    for t in TOLERANCES:
        tol = f"{t.abs:g}" + (f" + {t.rel:g} × reference" if t.rel else "")
        kind, pattern = (text.replace("|", "\\|") for text in (t.kind, t.pattern))  # a | inside a cell
        rows.append(f"| {kind} | `{pattern}` | {tol} | {t.spread:g} |")
    return "\n".join(rows)
