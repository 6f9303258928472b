"""The MNIST classifier used to measure what a latent edit does to the class, and its helpers."""

from __future__ import annotations

import pytest
import torch

from c2f import plots
from c2f.evaluate import class_change_rate, kl_active_units
from c2f.models import Classifier, ClassifierConfig
from c2f.objectives import Supervised
from c2f.train import TrainConfig, fit, train_or_load

CFG = ClassifierConfig(channels=(4, 8), features=16, num_classes=4)


def test_classifier_shapes_and_rejects_one_class():
    m = Classifier(CFG)
    assert isinstance(m, Supervised) and m.uses_labels
    x = torch.rand(5, 1, 28, 28)
    assert m(x).shape == (5, 4)
    assert m.predict(x).shape == (5,) and m.predict(x).dtype == torch.long
    torch.testing.assert_close(m.probabilities(x).sum(-1), torch.ones(5))
    assert 0.0 <= m.confident_fraction(x) <= 1.0 and m.confident_fraction(x, level=0.0) == 1.0
    loss, scalars = m.loss(x, torch.tensor([0, 1, 2, 3, 0]))
    loss.backward()
    assert all(p.grad is not None for p in m.parameters())
    assert set(scalars) == {"cross_entropy", "accuracy"}
    with pytest.raises(ValueError, match="2 classes"):
        Classifier(ClassifierConfig(num_classes=1))


def test_training_loop_passes_labels_and_the_classifier_learns(make_images):
    """fit gives a model with ``uses_labels`` the minibatch labels; on four noisy prototypes the classifier
    goes from chance to (nearly) perfect."""
    data = make_images(256, prototypes=4, flip=0.1)
    test = make_images(200, seed=0, prototypes=4, flip=0.1)
    torch.manual_seed(0)
    m = Classifier(CFG)
    before = (m.predict(test.x) == test.y).float().mean().item()
    history = fit(m, data, TrainConfig(epochs=4, batch_size=32, lr=3e-3))
    after = (m.predict(test.x) == test.y).float().mean().item()
    assert history["epochs"]["cross_entropy"][-1] < history["epochs"]["cross_entropy"][0]
    assert before < 0.6 and after > 0.95


def test_classifier_is_cached(make_images, isolated_cache):
    data = make_images(64)
    torch.manual_seed(0)
    a = Classifier(CFG)
    train_or_load(a, data, TrainConfig(epochs=1, batch_size=32), name="clf")
    torch.manual_seed(1)
    b = Classifier(CFG)
    train_or_load(b, data, TrainConfig(epochs=1, batch_size=32), name="clf")
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


class _Threshold:
    """A 'classifier' with a known answer: class 1 when the mean pixel exceeds 0.5."""

    def predict(self, x):
        return (x.flatten(1).mean(-1) > 0.5).long()


def test_class_change_rate_known_answer():
    before = torch.zeros(4, 1, 2, 2)
    after = before.clone()
    after[:3] = 1.0  # three of the four images change class
    assert class_change_rate(_Threshold(), before, after) == pytest.approx(0.75)
    assert class_change_rate(_Threshold(), before, before) == 0.0


def test_kl_active_units_counts_units_above_the_threshold():
    assert kl_active_units([0.0, 0.05, 0.2, 3.0]) == 2
    assert kl_active_units(torch.tensor([0.0, 0.05, 0.2, 3.0]), threshold=0.01) == 3


def test_labelled_traversal_names_rows_and_values():
    z0 = torch.zeros(1, 3)
    values = torch.linspace(-2, 2, 5)
    fig = plots.traversal(lambda z: torch.zeros(len(z), 1, 4, 4), z0, [2, 0], values,
                          labels=["z[2], KL 1.0", "z[0], KL 0.5"])
    assert [ax.get_ylabel() for ax in fig.axes] == ["z[2], KL 1.0", "z[0], KL 0.5"]
    assert [t.get_text() for t in fig.axes[-1].get_xticklabels()] == ["-2.0", "-1.0", "+0.0", "+1.0", "+2.0"]
    plots.plt.close(fig)
