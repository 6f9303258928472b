"""Chapter 08's findings: the sentences its findings cells print, written from small fake numbers."""

from __future__ import annotations

from c2f.findings import ch08

CURVE = [{"kl_nats": 1.45, "probe_accuracy": 0.248, "recon_nats": 202.9},
         {"kl_nats": 17.71, "probe_accuracy": 0.888, "recon_nats": 107.3}]


def test_family_line_describes_the_code():
    assert ch08.family_line("vae", "01", "units by KL", CURVE, 0.813, 10.0, 9.8) == (
        "vae (chapter 01; units by KL): within 10 nats the probe reads 0.813; first part 1.45 nats → accuracy "
        "0.248, distortion 202.9 nats; whole code 17.71 nats → 0.888, 107.3 nats; 90 % of that accuracy at 9.8 nats")


def test_against_the_baseline_groups_the_verdicts():
    lines = ch08.against_baseline({"vae": [0.80, 0.81, 0.79], "convdraw": [0.91, 0.90, 0.92],
                                   "vlae": [0.10, 0.15, 0.12], "lvae": [0.81, 0.78, 0.82]}, "vae", 10.0)
    assert lines[0].startswith("within 10 nats, convdraw is better by 0.110")
    assert lines[1].startswith("within 10 nats, vae is better by 0.677")
    assert lines[2].startswith("within 10 nats, no difference between lvae and vae at this budget")
    assert lines[3] == ("at 10 nats, against vae: read the class better than vae: convdraw; worse than vae: vlae; "
                        "no difference at this budget: lvae")


def test_one_seed_cannot_tell():
    lines = ch08.against_baseline({"vae": [0.80], "convdraw": [0.91]}, "vae", 10.0)
    assert "cannot tell them apart" in lines[0] and "better" not in lines[0]
    assert lines[1] == "at 10 nats, against vae: cannot tell (one seed): convdraw"


def test_collapse_line():
    curves = {"vae": CURVE, "pixelvae": [{"kl_nats": 0.15, "probe_accuracy": 0.556, "recon_nats": 103.8}]}
    assert ch08.collapse_line(curves) == ("codes that cost less than 1 nat in all (near posterior collapse): "
                                          "pixelvae; pixelvae: 0.15 nats, yet its posterior means give the probe "
                                          "0.556")
    assert ch08.collapse_line({"vae": CURVE}).endswith("collapse): none")


def test_correlation_states_a_direction_only_when_significant():
    nll = {f"f{i}": 100.0 + i for i in range(8)}
    assert ch08.correlation_line(nll, {f: -v for f, v in nll.items()}, 10.0).endswith(
        "a better (lower) NLL goes with an earlier class")
    assert ch08.correlation_line(nll, {f: v for f, v in nll.items()}, 10.0).endswith(
        "a better (lower) NLL goes with a later class")
    noisy = {"f0": 0.5, "f1": 0.1, "f2": 0.9, "f3": 0.3, "f4": 0.6, "f5": 0.2, "f6": 0.8, "f7": 0.4}
    assert ch08.correlation_line(nll, noisy, 10.0).endswith("no relation this page can establish")
