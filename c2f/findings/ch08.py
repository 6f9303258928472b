"""Chapter 08 (synthesis): the findings, written from the run's numbers."""

from __future__ import annotations

from scipy import stats as scipy_stats

from c2f.stats import CANNOT_TELL, NO_DIFFERENCE, compare


def family_line(family: str, chapter: str, order: str, curve: list[dict], within: float, nats: float,
                to_90: float) -> str:
    """One family's code, coarse first: the probe accuracy within `nats`, the first part and the whole code
    (rate, accuracy, distortion), and the rate at which the probe reaches 90 % of the whole code's accuracy."""
    first, whole = curve[0], curve[-1]
    return (f"{family} (chapter {chapter}; {order}): within {nats:g} nats the probe reads {within:.3f}; first "
            f"part {first['kl_nats']:.2f} nats → accuracy {first['probe_accuracy']:.3f}, distortion "
            f"{first['recon_nats']:.1f} nats; whole code {whole['kl_nats']:.2f} nats → "
            f"{whole['probe_accuracy']:.3f}, {whole['recon_nats']:.1f} nats; 90 % of that accuracy at {to_90:.1f} nats")


def against_baseline(early: dict[str, list[float]], baseline: str, nats: float) -> list[str]:
    """Every family's probe accuracy within `nats` (a value per seed, the same seeds for all) against the
    `baseline` family's, through :func:`c2f.stats.compare`: one sentence per family, then the families
    grouped by verdict."""
    lines, verdicts = [], {}
    for family, values in early.items():
        if family == baseline:
            continue
        c = compare(values, early[baseline], "probe_accuracy", names=(family, baseline))
        lines.append(f"within {nats:g} nats, {c.sentence('', 3)}")
        verdict = {family: "better", baseline: "worse"}.get(c.better, c.verdict)
        verdicts.setdefault(verdict, []).append(family)
    groups = [(f"read the class better than {baseline}", "better"), (f"worse than {baseline}", "worse"),
              (NO_DIFFERENCE, NO_DIFFERENCE), (CANNOT_TELL, CANNOT_TELL)]
    lines.append(f"at {nats:g} nats, against {baseline}: " + "; ".join(
        f"{text}: {', '.join(verdicts[key])}" for text, key in groups if key in verdicts))
    return lines


def collapse_line(curves: dict[str, list[dict]], below: float = 1.0) -> str:
    """The families whose whole code costs less than `below` nats (near posterior collapse), and what their
    posterior means still give the probe."""
    collapsed = [f for f, cv in curves.items() if cv[-1]["kl_nats"] < below]
    return (f"codes that cost less than {below:g} nat in all (near posterior collapse): "
            f"{', '.join(collapsed) or 'none'}"
            + "".join(f"; {f}: {curves[f][-1]['kl_nats']:.2f} nats, yet its posterior means give the probe "
                      f"{curves[f][-1]['probe_accuracy']:.3f}" for f in collapsed))


def correlation_line(nll: dict[str, float], early: dict[str, float], nats: float) -> str:
    """Spearman's rank correlation over families between the test NLL and the probe accuracy within `nats`,
    with its p-value; a direction is stated only when p < 0.05."""
    families = list(nll)
    rho, p = scipy_stats.spearmanr([nll[f] for f in families], [early[f] for f in families])
    verdict = ("no relation this page can establish" if not p < 0.05 else  # nan (a constant) is no relation
               "a better (lower) NLL goes with an earlier class" if rho < 0 else
               "a better (lower) NLL goes with a later class")
    return (f"Spearman correlation between NLL and the accuracy within {nats:g} nats over {len(families)} "
            f"families: {rho:+.2f} (p = {p:.2f}): {verdict}")
