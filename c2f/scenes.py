"""Multi-object MNIST: generated, seeded scenes of several digits with the ground truth of every digit.

Each scene is a `canvas` x `canvas` grey image holding 0..`max_digits` MNIST digits (the central
`digit_size` x `digit_size` patch of the 28 x 28 image; MNIST fits each digit into a 20 x 20 box and centres it by
its centre of mass, not its box, so a central 20 x 20 patch drops some ink: :func:`patch_ink_share` measures it),
pasted at uniformly drawn positions that keep the patch inside the canvas. Overlapping pixels take the
maximum, so the image stays in [0, 1]. For every digit the scene keeps its class, its box (x0, y0, x1, y1 in
pixels, exclusive ends) and the index of its MNIST image; the count is the number of digits.

The thesis generator (reference notes, discrete-and-air §7.2) is avoided on every count: the x and y of a
position are drawn independently (no digit is tied to the diagonal); two patches overlap by at most
`max_overlap` of a patch's area (rejection sampling), instead of overlapping in most two-digit images;
pixels are clipped to [0, 1]; classes and boxes are stored; and the training scenes use digits of MNIST's
training split while the test scenes use the test split, so no test digit was ever seen in training.

Scenes are generated from a seed with numpy's generator and cached as tensors in the data root
(``$C2F_DATA/multi_mnist``), keyed by every argument.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from c2f import data as datasets
from c2f.data import ImageSet
from c2f.utils import atomic_torch_save, stable_hash



@dataclass(frozen=True)
class SceneSpec:
    """What a set of scenes is made of; every field is part of the cache key."""

    split: str = "train"  # digits from this MNIST split: train | valid | test
    n: int = 10_000  # number of scenes
    counts: tuple[int, ...] = (0, 1, 2)  # numbers of digits, drawn uniformly from these
    canvas: int = 50
    digit_size: int = 20  # the central patch of each 28 x 28 digit that is pasted
    max_overlap: float = 0.1  # largest intersection of two patches, as a fraction of a patch's area
    seed: int = 0

    def validate(self) -> None:
        if self.split not in datasets.SPLITS:
            raise ValueError(f"scene split must be one of {datasets.SPLITS}, got {self.split!r}")
        if self.n < 1:
            raise ValueError(f"the number of scenes n must be >= 1, got {self.n}")
        if not self.counts or min(self.counts) < 0:
            raise ValueError(f"counts must be non-negative numbers of digits, got {self.counts}")
        if not 1 <= self.digit_size <= 28:
            raise ValueError(f"digit_size must be in 1..28, got {self.digit_size}")
        if self.canvas < self.digit_size:
            raise ValueError(f"canvas ({self.canvas}) must be at least digit_size ({self.digit_size})")
        if not 0.0 <= self.max_overlap <= 1.0:
            raise ValueError(f"max_overlap must be in [0, 1], got {self.max_overlap}")


@dataclass(frozen=True)
class SceneSet:
    """Generated scenes: ``images`` (an :class:`ImageSet` whose labels ``y`` are the counts, ready for the
    training loop) and per digit slot j < max count: ``classes`` [N, J] (−1 where there is no digit),
    ``boxes`` [N, J, 4] (x0, y0, x1, y1 in pixels; −1 where there is none), ``sources`` [N, J] (the MNIST
    index of the digit, −1 where none)."""

    spec: SceneSpec
    images: ImageSet
    classes: torch.Tensor
    boxes: torch.Tensor
    sources: torch.Tensor

    @property
    def counts(self) -> torch.Tensor:
        return self.images.y

    def __len__(self) -> int:
        return len(self.images)

    def head(self, n: int) -> "SceneSet":
        """The first `n` scenes (0: all; more than the set holds is an error, as in ``ImageSet.subset``)."""
        from dataclasses import replace

        return replace(self, images=self.images.subset(n, seed=None), classes=self.classes[:n], boxes=self.boxes[:n],
                       sources=self.sources[:n])


def _place(rng: np.random.Generator, k: int, free: int, size: int, max_overlap: float,
           tries: int = 1000) -> list[tuple[int, int]]:
    """Top-left corners of k patches of side `size` in [0, free], overlapping pairwise by at most
    `max_overlap` of a patch's area (the whole set is redrawn when a digit finds no place)."""
    limit = max_overlap * size * size
    for _ in range(tries):
        corners: list[tuple[int, int]] = []
        for _ in range(k):
            for _ in range(tries):
                x, y = (int(v) for v in rng.integers(0, free + 1, size=2))
                if all(max(0, size - abs(x - a)) * max(0, size - abs(y - b)) <= limit for a, b in corners):
                    corners.append((x, y))
                    break
            else:
                break
        if len(corners) == k:
            return corners
    raise ValueError(f"cannot place {k} digits of size {size} with overlap <= {max_overlap} on this canvas")


def generate(spec: SceneSpec, digits: torch.Tensor, labels: torch.Tensor) -> SceneSet:
    """Scenes from `digits` [M, 1, 28, 28] in [0, 1] with `labels` [M], on the CPU, reproducibly from
    ``spec.seed``."""
    spec.validate()
    rng = np.random.default_rng(spec.seed)
    slots = max(spec.counts)
    lo = (28 - spec.digit_size) // 2
    patches = digits[:, 0, lo:lo + spec.digit_size, lo:lo + spec.digit_size].float().cpu()
    x = torch.zeros(spec.n, 1, spec.canvas, spec.canvas)
    classes = torch.full((spec.n, slots), -1, dtype=torch.long)
    boxes = torch.full((spec.n, slots, 4), -1, dtype=torch.long)
    sources = torch.full((spec.n, slots), -1, dtype=torch.long)
    counts = rng.choice(np.asarray(spec.counts), size=spec.n)
    free = spec.canvas - spec.digit_size
    for i, k in enumerate(counts):
        for j, (cx, cy) in enumerate(_place(rng, int(k), free, spec.digit_size, spec.max_overlap)):
            src = int(rng.integers(len(patches)))
            region = x[i, 0, cy:cy + spec.digit_size, cx:cx + spec.digit_size]
            torch.maximum(region, patches[src], out=region)
            classes[i, j], sources[i, j] = int(labels[src]), src
            boxes[i, j] = torch.tensor([cx, cy, cx + spec.digit_size, cy + spec.digit_size])
    return SceneSet(spec, _images(spec, x, torch.as_tensor(counts, dtype=torch.long)), classes, boxes, sources)


def _images(spec: SceneSpec, x: torch.Tensor, counts: torch.Tensor) -> ImageSet:
    """The scenes as an :class:`ImageSet` (labels: the counts), named by a hash of `spec` for the cache keys."""
    return ImageSet("multi_mnist", spec.split, x, counts, "dynamic", selection=stable_hash(asdict(spec)))


def load(spec: SceneSpec, *, device: torch.device | str = "cpu") -> SceneSet:
    """The scenes of `spec` on `device`: read from the cache in the data root, or generated from MNIST
    (loaded with :func:`c2f.data.load`) and cached."""
    spec.validate()
    path = datasets.data_root() / "multi_mnist" / f"{stable_hash(asdict(spec))}.pt"
    if path.exists():
        state = torch.load(path, weights_only=True)
        scenes = SceneSet(spec, _images(spec, state["x"], state["count"]), state["classes"], state["boxes"],
                          state["sources"])
    else:
        mnist = datasets.load("mnist", spec.split, binarize="none")
        scenes = generate(spec, mnist.x, mnist.y)
        atomic_torch_save({"x": scenes.images.x, "count": scenes.images.y, "classes": scenes.classes,
                           "boxes": scenes.boxes, "sources": scenes.sources}, path)
    return to(scenes, device)


def to(scenes: SceneSet, device: torch.device | str) -> SceneSet:
    return SceneSet(scenes.spec, scenes.images.to(device), scenes.classes.to(device), scenes.boxes.to(device),
                    scenes.sources.to(device))



def score_detections(scenes: SceneSet, count: torch.Tensor, present: torch.Tensor, boxes: torch.Tensor,
                     classes: torch.Tensor | None = None, min_iou: float = 0.5) -> dict:
    """Score a model's objects against the ground truth of `scenes`.

    `count` [N] the inferred number of objects, `present` [N, T] which steps hold one, `boxes` [N, T, 4]
    their boxes in pixels, `classes` [N, T] their cluster (e.g. DAIR's class code). In every scene the
    detected objects are matched to the true digits by the Hungarian method on box IoU (torchvision's
    ``box_iou``; scipy's ``linear_sum_assignment``), and a pair counts when its IoU is at least `min_iou`.
    Returns ``count_accuracy``, ``count_accuracy_<k>`` per true count k, ``over_count`` and ``under_count`` (the
    shares of scenes given more or fewer objects than digits), ``box_iou`` (mean IoU of the
    matched pairs), ``recall`` (true digits matched), ``precision`` (detected objects matched), ``f1`` (their
    harmonic mean) and, with `classes`, ``class_accuracy``: the one-to-one (Hungarian) map of clusters to digit
    classes over the matched pairs."""
    from scipy.optimize import linear_sum_assignment
    from torchvision.ops import box_iou

    from c2f.evaluate import cluster_accuracy

    truth = scenes.counts.cpu()
    count, present, boxes = count.cpu(), present.cpu(), boxes.cpu().float()
    out = {"count_accuracy": float((count == truth).double().mean()),
           "over_count": float((count > truth).double().mean()), "under_count": float((count < truth).double().mean())}
    for k in truth.unique().tolist():
        out[f"count_accuracy_{k}"] = float((count[truth == k] == k).double().mean())
    ious, clusters, labels, matched = [], [], [], 0
    for i in range(len(truth)):
        true_boxes = scenes.boxes[i, :truth[i]].cpu().float()
        found = present[i].nonzero().squeeze(-1)
        if len(true_boxes) == 0 or len(found) == 0:
            continue
        iou = box_iou(boxes[i, found], true_boxes)
        rows, cols = linear_sum_assignment(-iou.numpy())
        for r, c in zip(rows, cols):
            if iou[r, c] >= min_iou:
                matched += 1
                ious.append(float(iou[r, c]))
                if classes is not None:
                    clusters.append(int(classes[i, found[r]]))
                    labels.append(int(scenes.classes[i, c]))
    out["box_iou"] = sum(ious) / len(ious) if ious else 0.0
    out["recall"] = matched / max(1, int(truth.sum()))
    out["precision"] = matched / max(1, int(present.sum()))
    total = out["recall"] + out["precision"]
    out["f1"] = 2 * out["recall"] * out["precision"] / total if total else 0.0
    if classes is not None:
        out["class_accuracy"] = cluster_accuracy(torch.tensor(clusters), torch.tensor(labels)) if labels else 0.0
    return out


@torch.no_grad()
def evaluate_scenes(model, scenes: SceneSet, *, seed: int = 0, batch_size: int = 500, steps: int | None = None) -> dict:
    """A model's objects on one fixed binarization of `scenes` (drawn with `seed`): :func:`score_detections`
    of its posterior modes (``model.detect``), plus ``sampled_count_accuracy``, the accuracy of one count
    drawn from q(n | x) per scene (the thesis's metric). With `steps`, the model runs that many inference
    steps (``model.with_steps``; the extrapolation test lets it report more objects than it was trained with)."""
    from c2f.data import batches

    if steps is not None:
        model = model.with_steps(steps)
    was_training = model.training
    model.eval()
    data = scenes.images.fixed_binarization(seed)
    parts: dict[str, list] = {}
    with torch.random.fork_rng(devices=[data.x.device] if data.x.device.type == "cuda" else []):
        torch.manual_seed(seed)
        for x, _ in batches(data, batch_size, shuffle=False):
            found = model.detect(x)
            found["sampled"] = model.sampled_count(x)
            for k in ("count", "present", "boxes", "classes", "sampled"):
                if k in found:
                    parts.setdefault(k, []).append(found[k].cpu())
    model.train(was_training)
    out = {k: torch.cat(v) for k, v in parts.items()}
    scores = score_detections(scenes, out["count"], out["present"], out["boxes"], out.get("classes"))
    scores["sampled_count_accuracy"] = float((out["sampled"] == scenes.counts.cpu()).double().mean())
    return scores


def patch_ink_share(split: str = "test", digit_size: int = 20) -> float:
    """The mean share of an MNIST digit's ink (grey levels summed) inside the central `digit_size` x
    `digit_size` patch that :func:`generate` pastes, over the digits of `split`."""
    x = datasets.load("mnist", split, binarize="none").x.float()
    lo = (28 - digit_size) // 2
    inside = x[:, :, lo:lo + digit_size, lo:lo + digit_size].sum((1, 2, 3))
    return float((inside / x.sum((1, 2, 3)).clamp_min(1e-8)).mean())


@torch.no_grad()
def first_object_ink(model, scenes: SceneSet, *, seed: int = 0) -> float:
    """On the one-digit scenes of `scenes` (binarization `seed`): the ink drawn by the model's first object
    (posterior means) as a share of the scene's ink, mean over scenes of the summed pixels. Near 1: the first
    object draws the whole digit; near 1/2: the digit is split among objects."""
    x = scenes.images.fixed_binarization(seed).x[scenes.counts == 1]
    if len(x) == 0:
        return float("nan")
    was_training = model.training
    model.eval()
    drawn = torch.cat([model.infer(b, mode=True).objects[:, 0].sum((1, 2, 3)) for b in x.split(500)])
    model.train(was_training)
    return float(drawn.mean() / x.sum((1, 2, 3)).mean())


def show(rows: list[torch.Tensor], labels: list[str], boxes: list[torch.Tensor | None] | None = None,
         present: list[torch.Tensor | None] | None = None, classes: list[torch.Tensor | None] | None = None,
         title: str | None = None):
    """Rows of scenes (each [n, 1, H, W]) with their boxes ([n, T, 4] pixels; one colour per step, the same in
    every row; `present` [n, T] says which to draw) and, above a box, its class. Returns the figure."""
    from matplotlib.patches import Rectangle

    from c2f import plots

    boxes = boxes or [None] * len(rows)
    present = present or [None] * len(rows)
    classes = classes or [None] * len(rows)
    n = rows[0].shape[0]
    colors = plots.sns.color_palette("colorblind", 10)
    fig, axes = plots.plt.subplots(len(rows), n, figsize=(1.3 * n + 1, 1.35 * len(rows)), squeeze=False)
    for r, (images, label) in enumerate(zip(rows, labels)):
        for i in range(n):
            ax = axes[r, i]
            ax.imshow(images[i, 0].detach().float().cpu().clamp(0, 1).numpy(), vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if boxes[r] is not None:
                for j, (x0, y0, x1, y1) in enumerate(boxes[r][i].detach().float().cpu().tolist()):
                    if present[r] is None or bool(present[r][i, j]):
                        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, lw=1.5,
                                               edgecolor=colors[j % len(colors)]))
                        if classes[r] is not None:
                            ax.text(x0, y0 - 1, str(int(classes[r][i, j])), color=colors[j % len(colors)],
                                    fontsize=8, va="bottom")
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
