"""A page's target: met or missed only where the interval over seeds lies on one side of it."""

from c2f.findings.targets import target_verdict


def test_higher_is_better():
    assert target_verdict([0.95, 0.96, 0.97], 0.9) == "met"
    assert target_verdict([0.50, 0.60, 0.55], 0.9) == "missed"
    assert target_verdict([0.85, 0.97, 0.93], 0.9) == "cannot tell at this budget"
    assert target_verdict([0.95], 0.9) == "cannot tell (one seed)"


def test_lower_is_better():
    assert target_verdict([78.0, 78.2, 78.1], 79.0, higher=False) == "met"
    assert target_verdict([80.0, 80.2, 80.1], 79.0, higher=False) == "missed"
    assert target_verdict([78.0, 80.0, 79.2], 79.0, higher=False) == "cannot tell at this budget"
