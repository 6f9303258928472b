"""Chapter 08's findings: the sentences its findings cells print, written from small fake numbers."""

from __future__ import annotations

from c2f.findings import ch08


def test_family_line_states_accuracies_and_rates_with_seeds():
    line = ch08.family_line("vae", "01", "units by KL", {2.0: [0.30, 0.32, 0.28], 10.0: [0.8, 0.9, 0.85]},
                            {0.5: [3.0, 4.0, 5.0], 0.9: [8.0, None, None]})
    assert line == ("vae (chapter 01; units by KL): decoded-image class accuracy 0.300 ± 0.020 (worst 0.280) at "
                    "2 nats, 0.850 ± 0.050 (worst 0.800) at 10 nats; accuracy 0.5 reached at 4.00 ± 1.00 nats; "
                    "accuracy 0.9 not reached by 2 of 3 seeds")


def test_differences_keep_only_those_that_survive_their_interval():
    lines = ch08.differences({"vae": [0.80, 0.81, 0.79], "convdraw": [0.91, 0.90, 0.92],
                              "lvae": [0.81, 0.78, 0.82]}, "area to 10 nats")
    assert lines[0].startswith("area to 10 nats, vae against convdraw: convdraw is better than vae by 0.110")
    assert lines[1].startswith("area to 10 nats, convdraw against lvae: convdraw is better than lvae by 0.107")
    assert lines[2] == "area to 10 nats: no difference at this budget for the other 1 pair(s): vae–lvae"
    assert ch08.differences({"a": [0.1], "b": [0.2]}, "x") == ["x: 1 pair(s) cannot tell (one seed)"]


def test_one_curve_survives_or_not():
    flat = {2.0: [0.30, 0.32, 0.28], 10.0: [0.80, 0.82, 0.78]}
    close = {2.0: [0.31, 0.30, 0.29], 10.0: [0.79, 0.83, 0.79]}
    far = {2.0: [0.31, 0.30, 0.29], 10.0: [0.60, 0.62, 0.61]}
    whole = {"vae": 12.0, "single": 11.0, "quotient": 10.5}
    same = ch08.one_curve_line({"vae": flat, "single": close, "quotient": close}, "vae", ["single", "quotient"], whole)
    assert same == ("single, quotient and vae's KL-sorted units lie on one accuracy–rate curve: no difference "
                    "at this budget at any of 2, 10 nats")
    apart = ch08.one_curve_line({"vae": flat, "single": close, "quotient": far}, "vae", ["single", "quotient"], whole)
    assert apart.startswith("the progressive models' groups and vae's KL-sorted units do not lie on one curve: "
                            "at 10 nats vae is better than quotient by 0.190")
    one = ch08.one_curve_line({"vae": {2.0: [0.3]}, "single": {2.0: [0.2]}}, "vae", ["single"], whole)
    assert "cannot tell" in one
    short = {"vae": 3.0, "single": 11.0, "quotient": 10.5}  # beyond 3 nats the VAE's curve is only held
    assert ch08.one_curve_line({"vae": flat, "single": close, "quotient": far}, "vae", ["single", "quotient"],
                               short).endswith("no difference at this budget at any of 2 nats")
    assert ch08.one_curve_line({"vae": flat, "single": close}, "vae", ["single"], {"vae": 1.0, "single": 5.0}) == (
        "no rate of 2, 10 nats lies within both vae's and the progressive codes")


def test_fano_line_names_the_closest_point():
    ok = ch08.fano_line([("vae", 0.5, 0.2, -0.1), ("lvae", 1.0, 0.4, -0.02)])
    assert ok.startswith("Fano check over 2 points: no point exceeds the bound of its rate (closest: lvae at 1.00")
    assert "SOME POINTS EXCEED" in ch08.fano_line([("vae", 0.1, 0.9, 0.3)])
