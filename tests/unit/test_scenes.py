"""Multi-object MNIST scenes: counts, boxes inside the canvas and on the ink, limited overlap, classes kept,
seeds that reproduce, the cache, and test scenes built from test digits only."""

from __future__ import annotations

import pytest
import torch

from c2f import scenes
from c2f.data import DataNotFoundError
from c2f.data import load as load_mnist


def fake_digits(n: int = 50, seed: int = 0):
    """n distinct 28x28 'digits': a filled 20x20 square whose grey level encodes the index."""
    x = torch.zeros(n, 1, 28, 28)
    x[:, :, 4:24, 4:24] = (torch.arange(n).float() + 1).view(n, 1, 1, 1) / (n + 1)
    return x, torch.arange(n) % 10


def make(**kw) -> scenes.SceneSet:
    spec = scenes.SceneSpec(**{"n": 300, "counts": (0, 1, 2, 3), "seed": 3, **kw})
    return scenes.generate(spec, *fake_digits())


def test_counts_classes_and_boxes_agree():
    s = make()
    assert set(s.counts.tolist()) == {0, 1, 2, 3}
    slots = torch.arange(3).expand(len(s), 3)
    present = slots < s.counts[:, None]
    assert ((s.classes >= 0) == present).all() and ((s.boxes[..., 0] >= 0) == present).all()
    b = s.boxes[present]
    assert (b[:, :2] >= 0).all() and (b[:, 2:] <= 50).all()  # inside the canvas
    assert ((b[:, 2] - b[:, 0]) == 20).all() and ((b[:, 3] - b[:, 1]) == 20).all()


def test_each_digit_is_drawn_at_its_box_and_pixels_stay_in_range():
    digits, labels = fake_digits()
    s = scenes.generate(scenes.SceneSpec(n=100, counts=(1,), seed=1), digits, labels)
    assert 0.0 <= s.images.x.min() and s.images.x.max() <= 1.0
    for i in range(len(s)):
        x0, y0, x1, y1 = s.boxes[i, 0].tolist()
        patch = s.images.x[i, 0, y0:y1, x0:x1]
        assert torch.equal(patch, digits[s.sources[i, 0], 0, 4:24, 4:24])
        assert s.images.x[i].sum() == pytest.approx(patch.sum().item())  # nothing outside the box
        assert s.classes[i, 0] == labels[s.sources[i, 0]]


@pytest.mark.parametrize("max_overlap", [0.0, 0.1])
def test_overlap_is_bounded_and_positions_are_not_tied(max_overlap):
    s = make(counts=(2,), max_overlap=max_overlap)
    a, b = s.boxes[:, 0], s.boxes[:, 1]
    w = (torch.minimum(a[:, 2], b[:, 2]) - torch.maximum(a[:, 0], b[:, 0])).clamp(min=0)
    h = (torch.minimum(a[:, 3], b[:, 3]) - torch.maximum(a[:, 1], b[:, 1])).clamp(min=0)
    assert ((w * h).float() <= max_overlap * 400).all()
    assert (a[:, 0] != a[:, 1]).any()  # the thesis generator put the first digit on the diagonal


def test_seeds_reproduce_and_differ():
    assert torch.equal(make().images.x, make().images.x)
    assert not torch.equal(make().images.x, make(seed=4).images.x)
    assert make().images.spec != make(seed=4).images.spec  # different cache keys for trained models


def test_bad_spec_names_the_field():
    with pytest.raises(ValueError, match="max_overlap"):
        make(max_overlap=2.0)
    with pytest.raises(ValueError, match="digit_size"):
        make(digit_size=30)
    with pytest.raises(ValueError, match="split"):
        scenes.load(scenes.SceneSpec(split="training"))


def test_impossible_placement_is_an_error():
    with pytest.raises(ValueError, match="cannot place"):
        scenes.generate(scenes.SceneSpec(n=2, counts=(3,), canvas=20, max_overlap=0.0), *fake_digits())


def test_load_caches_and_uses_the_split_it_names(tmp_path, monkeypatch):
    """Test scenes hold test digits: every pasted patch is the patch of the MNIST test image it names."""
    try:
        mnist = load_mnist("mnist", "test", binarize="none")
    except DataNotFoundError:
        pytest.skip("MNIST is not available")
    monkeypatch.setenv("C2F_DATA", str(tmp_path))  # an empty data root: the cache is written here ...
    monkeypatch.setattr(scenes.datasets, "load", lambda *a, **k: mnist)  # ... from the split asked for
    spec = scenes.SceneSpec(split="test", n=20, seed=5)
    s = scenes.load(spec)
    assert len(list((tmp_path / "multi_mnist").glob("*.pt"))) == 1
    again = scenes.load(spec)
    assert torch.equal(s.images.x, again.images.x) and torch.equal(s.boxes, again.boxes)
    for i, j in (s.sources >= 0).nonzero().tolist():
        x0, y0, x1, y1 = s.boxes[i, j].tolist()
        src = mnist.x[s.sources[i, j], 0, 4:24, 4:24]
        region = s.images.x[i, 0, y0:y1, x0:x1]
        assert (region >= src).all() and s.classes[i, j] == mnist.y[s.sources[i, j]]
