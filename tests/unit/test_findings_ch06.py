"""Chapter 06's findings: the sentences its answers cell prints, written from small fake numbers."""

from __future__ import annotations

from c2f.evaluate import summarise
from c2f.experiment import Outcome
from c2f.findings import ch06

LABELS = {"vae_conv": "conv VAE", "pixelcnn": "PixelCNN", "pixelvae": "PixelVAE", "pixelvae_up": "PixelVAE up"}


def outcomes(nll: dict[str, list[float]]) -> dict[str, Outcome]:
    out = {}
    for name, values in nll.items():
        runs = [{"test_nll_nats": v} for v in values]
        out[name] = Outcome(name, list(range(len(values))), runs=runs, summary=summarise(runs))
    return out


def test_likelihoods_rank_only_under_an_interval_that_excludes_zero():
    lines = ch06.likelihood_lines(outcomes({"pixelvae": [90.0, 91.0, 92.0], "pixelcnn": [90.5, 90.4, 92.2],
                                            "vae_conv": [120.0, 122.0, 121.0], "pixelvae_up": [80.0, 81.0, 82.1]}),
                                  LABELS)
    assert len(lines) == 3
    assert "no difference between PixelVAE and PixelCNN at this budget" in lines[0]
    assert "PixelVAE is better by 30.00 nats" in lines[1]
    assert "PixelVAE up is better by 9.97 nats" in lines[2]


def test_one_seed_describes_and_does_not_rank():
    lines = ch06.likelihood_lines(outcomes({n: [100.0 + i] for i, n in enumerate(LABELS)}), LABELS)
    assert all("cannot tell them apart" in line and "better" not in line for line in lines)


def test_target_needs_k_1000_and_an_interval_below_it():
    assert ch06.target_line([78.0, 78.2, 78.1], 10, "").endswith("not comparable (K < 1000)")
    assert ch06.target_line([78.0, 78.2, 78.1], 1000, "").endswith(": met")
    assert ch06.target_line([80.0, 80.2, 80.1], 1000, "").endswith(": missed")
    assert ch06.target_line([78.0, 80.0, 79.2], 1000, "").endswith("cannot tell at this budget")
    assert ch06.target_line([78.0], 1000, "").endswith("cannot tell (one seed)")


def test_descriptions():
    assert "z decides more" in ch06.sampling_line({"pixels_changed_by_noise": 10, "pixels_changed_by_z": 90,
                                                   "pixels_between_test_images": 150})
    assert "decoder's own sampling" in ch06.sampling_line({"pixels_changed_by_noise": 90, "pixels_changed_by_z": 10,
                                                          "pixels_between_test_images": 150})
    line = ch06.layer_line({0: 13.9, 1: 0.2, 2: 0.1}, {0: 16, 1: 0, 2: 3})
    assert "L=0 13.90" in line and line.endswith("z collapsed (no active unit) at L=1")
    assert ch06.layer_line({0: 13.9}, {0: 16}).endswith("no depth collapses z entirely")
    lines = ch06.collapse_lines({"PixelVAE": {"kl_nats": 0.2, "active_units": 0},
                                 "conv VAE": {"kl_nats": 13.9, "active_units": 16}}, 16)
    assert "0/16 active units (collapsed" in lines[0] and "16/16 active units (not collapsed)" in lines[1]
    off = ch06.two_level_line({"kl_layer_2": 0.0, "kl_nats": 0.4, "active_units_layer_2": 0}, 8)
    assert "0.00 of 0.40 nats" in off and "switched off" in off
    assert ch06.two_level_line({"kl_layer_2": 2.0, "kl_nats": 8.0, "active_units_layer_2": 3}, 8).endswith("used")


def test_one_seed_with_per_image_values_compares_over_the_test_images():
    per_image = {"pixelvae": [90.0, 92.0, 91.0, 93.0], "pixelcnn": [95.0, 96.0, 97.0, 96.5],
                 "vae_conv": [90.5, 91.0, 92.0, 92.5], "pixelvae_up": [80.0, 81.0, 80.5, 82.0]}
    out = outcomes({n: [sum(v) / len(v)] for n, v in per_image.items()})
    for name, o in out.items():
        o.runs[0]["test_nll_nats_per_image"] = per_image[name]
    lines = ch06.likelihood_lines(out, LABELS)
    assert lines[0].startswith("likelihoods: PixelVAE is better by 4.62 nats")
    assert "over 4 test images, one seed" in lines[0]
    assert "no difference between PixelVAE and conv VAE at this budget" in lines[1]


def test_dynamic_line_compares_through_the_interval_and_states_the_shift():
    dyn = outcomes({"vae_conv": [120.0, 122.0, 121.0], "pixelvae": [90.0, 91.0, 92.0]})
    line = ch06.dynamic_line(dyn, {"vae_conv": 119.0, "pixelvae": 92.0}, LABELS, 10)
    assert line.startswith("dynamic MNIST (K=10): PixelVAE is better by 30.00 nats")
    assert line.endswith("conv VAE +2.00, PixelVAE -1.00 nats")
    one = ch06.dynamic_line(outcomes({"vae_conv": [120.0], "pixelvae": [90.0]}), {"vae_conv": 1, "pixelvae": 1},
                            LABELS, 10)
    assert "better" not in one
