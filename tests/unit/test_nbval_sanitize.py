"""tests/nbval_sanitize.cfg: nbval ignores numbers and the near-tie strings derived from them, not structure."""

import re

import pytest
from nbval.plugin import get_sanitize_patterns

from c2f.book.chapters import PROJECT_ROOT

PATTERNS = get_sanitize_patterns((PROJECT_ROOT / "tests" / "nbval_sanitize.cfg").read_text())


def sanitize(text: str) -> str:
    for regex, replace in PATTERNS:  # nbval applies them in file order
        text = re.sub(regex, replace, text)
    return text


@pytest.mark.parametrize("a, b", [
    ("ELBO +0.07 nats against the full recipe", "ELBO -0.02 nats against the full recipe"),
    ("ranking: single_steps, rnn, quotient; done", "ranking: rnn, single_steps, quotient; done"),
    ("best-ordered model (highest mean prefix ELBO): single_steps (-255.99 nats)",
     "best-ordered model (highest mean prefix ELBO): rnn_per_group (-256.01 nats)"),
    ("rnn: above single at 3 of 4 prefixes (within 1 nat: yes)", "rnn: above single at 2 of 4 prefixes (within 1 nat: no)"),
    ("target, lvae: active units in every layer: NOT met", "target, lvae: active units in every layer: met"),
    ("decreasing at every k: False", "decreasing at every k: True"),
    ("vae_conv: 2 active units of 32", "vae_conv: 3 active units of 32"),
    ("active units per layer (1..3): 5/8 3/4 1/2", "active units per layer (1..3): 6/8 3/4 0/2"),
    ("LVAE neither  ELBO +14.48 nats; active units 2 against 3", "LVAE neither  ELBO +14.40 nats; active units 3 against 3"),
    ("KL share of layers 1..3: 52%, 39%, 9%; unused layer(s): [2]", "KL share of layers 1..3: 52%, 38%, 9%; every layer used"),
    ("rnn  KL per group falling; 2 group(s) below 0.1 nat", "rnn  KL per group falling; 3 group(s) below 0.1 nat"),
    ('<td id="T_main_row4_col5" class="data row4 col5" >5</td>', '<td id="T_main_row4_col5" class="data row4 col5" >6</td>'),
])
def test_near_ties_are_masked(a, b):
    assert sanitize(a) == sanitize(b)


@pytest.mark.parametrize("a, b", [
    ("standard   106,392 parameters; test ELBO -519.50", "standard   106,393 parameters; test ELBO -519.50"),
    ("MNIST: 1000 training, 200 validation and 200 test images", "MNIST: 1000 training, 100 validation and 200 test images"),
    ("rnn: above single at 3 of 4 prefixes", "quotient: above single at 3 of 4 prefixes"),
    ("random order of the groups: [1, 2, 4, 3]", "random order of the groups: [1, 2, 3, 4]"),
])
def test_structure_is_kept(a, b):
    assert sanitize(a) != sanitize(b)
