"""A small MNIST classifier, used as a measuring instrument: does an edit of a latent change the class?

Two strided convolutions and a dense layer (:class:`c2f.nn.ConvEncoder`), then a linear map to the class
logits, trained with cross-entropy on the labelled training images. It takes grey levels in [0, 1], the
same range as a decoder's Bernoulli means, so it can read reconstructions, redraws and samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from c2f.nn import ConvEncoder


@dataclass
class ClassifierConfig:
    channels: tuple[int, ...] = (16, 32)
    features: int = 128
    num_classes: int = 10
    image_shape: tuple[int, int, int] = (1, 28, 28)


class Classifier(nn.Module):
    """p(y | x) = softmax(f(x)), f a small convolutional network."""

    uses_labels = True  # the training loop passes the minibatch's labels to `loss` as `y`

    def __init__(self, cfg: ClassifierConfig = ClassifierConfig()):
        super().__init__()
        if cfg.num_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {cfg.num_classes}")
        self.cfg = cfg
        self.features = ConvEncoder(cfg.image_shape, cfg.channels, cfg.features)
        self.head = nn.Linear(cfg.features, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits [B, num_classes]."""
        return self.head(self.features(x))

    def loss(self, x: torch.Tensor, y: torch.Tensor, kl_weight: float = 1.0, free_bits: float = 0.0):
        """Cross-entropy (the KL arguments of the training loop do not apply)."""
        logits = self(x)
        ce = F.cross_entropy(logits, y)
        return ce, {"cross_entropy": ce.detach(), "accuracy": (logits.argmax(-1) == y).float().mean()}

    @torch.no_grad()
    def probabilities(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """p(y | x) for each image [N, num_classes] (in eval mode, in batches)."""
        was_training = self.training
        self.eval()
        out = torch.cat([self(x[i:i + batch_size]).softmax(-1) for i in range(0, len(x), batch_size)])
        self.train(was_training)
        return out

    def predict(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """The most probable class of each image [N]."""
        return self.probabilities(x, batch_size).argmax(-1)

    def confident_fraction(self, x: torch.Tensor, level: float = 0.9) -> float:
        """The fraction of images that the classifier assigns to one class with probability ≥ `level`: a
        measure of how many samples look like a digit rather than a fragment or a blend."""
        return (self.probabilities(x).max(-1).values >= level).float().mean().item()
