"""Real bitstreams: a learned codec from Conv-DRAW's latents, and the classic image codecs through Pillow.

**The learned codec.** To send the first t iterations of an image, run the model along the quantised path:
at iteration i the learned prior p_i = N(μ_p, σ_p²) is known to both sides (it depends only on latents
already sent); the sender quantises the posterior mean on a grid of step Δ·σ_p centred on μ_p,

    k_i = round((μ_q − μ_p) / (Δ σ_p)),      ẑ_i = μ_p + Δ σ_p k_i,

and the receiver rebuilds ẑ_i from k_i. The probability the prior gives to the bin of k_i is that of a unit
Gaussian on the bin [k − ½, k + ½]·Δ, so the integers k_i are entropy-coded with rANS (``constriction``'s
stack coder, Duda 2013) under ``QuantizedGaussian(0, 1/Δ)``: exactly the learned prior's mass on each bin.
After t iterations the receiver lets the decoder continue to T from the prior mean (no bits). A bitstream is
a 2-byte header (t, and Δ in 1/16ths) and the coder's 32-bit words; the model itself is known to both sides.

**Classic codecs.** JPEG (optimised Huffman tables), JPEG 2000 (a raw codestream, no JP2 box; three
resolution levels, which a 28×28 image can hold, and one quality layer at a target PSNR: a target compression
ratio counts the ~160-byte main header, so every ratio a small image allows gives the same file), WebP and
AVIF, all through Pillow, on 8-bit grey images, over their quality ranges. Distortion is measured on 8-bit
images with scikit-image: PSNR from the mean squared error over all the images (so a perfect image does not
give an infinite mean) and the mean SSIM.

**Fair rates.** A 28×28 image is so small that a file format's container (headers, tables, boxes) can cost more
than the picture: a blank image is 164 B as JPEG and ~300 B as AVIF. Every point therefore carries three rates
(:data:`RATES`): ``file``, the whole file per image; ``payload``, the container separated, i.e. the file minus
the same codec's file for a blank image at the same setting (the learned codec: minus its 2-byte header); and
``mosaic``, the amortised rate of one file holding all the images as a mosaic (10 × 10 digits for 100 images),
per image, with the PSNR of that mosaic's decoded tiles (the learned codec: one rANS stream for all images).
:func:`bd_rate` compares two curves at equal PSNR (Bjøntegaard's delta rate).
"""

from __future__ import annotations

import io
import math
import struct
import time
from dataclasses import dataclass

import constriction
import numpy as np
import torch
from torch.distributions import kl_divergence
from PIL import Image
from skimage.metrics import structural_similarity

SYMBOL_RANGE = 255  # symbols are clipped to [-255, 255]
RATES = ("file", "payload", "mosaic")  # whole files; the container separated; a mosaic's amortised rate
HEADER = struct.Struct("<BB")  # iterations sent, Δ × 16

# name -> (Pillow format, quality settings from the lowest to the highest rate, options for one setting)
CLASSIC = {
    "jpeg": ("JPEG", [1, 2, 5, 10, 20, 30, 50, 70, 90, 95],
             lambda q: {"quality": q, "optimize": True}),
    "jpeg2000": ("JPEG2000", [14, 17, 20, 23, 26, 29, 32, 36, 40, 45, 50],  # target PSNR of its one layer (dB)
                 lambda db: {"quality_mode": "dB", "quality_layers": [db], "num_resolutions": 3,
                             "irreversible": True, "no_jp2": True}),
    "webp": ("WEBP", [0, 5, 10, 20, 40, 60, 80, 90, 100], lambda q: {"quality": q, "method": 6}),
    "avif": ("AVIF", [0, 10, 30, 50, 70, 90, 100], lambda q: {"quality": q}),
}


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Images [N, 1, H, W] in [0, 1] as 8-bit grey arrays [N, H, W]."""
    return (x.detach().float().cpu().clamp(0, 1)[:, 0] * 255).round().to(torch.uint8).numpy()


def distortion(original: np.ndarray, decoded: np.ndarray) -> dict:
    """PSNR (dB, from the mean squared error over all images) and mean SSIM of 8-bit images [N, H, W]."""
    mse = float(np.mean((original.astype(np.float64) - decoded.astype(np.float64)) ** 2))
    psnr = 10 * math.log10(255**2 / max(mse, 1e-10))
    ssim = float(np.mean([structural_similarity(a, b, data_range=255) for a, b in zip(original, decoded)]))
    return {"psnr": psnr, "ssim": ssim, "mse": mse}


# --- the learned codec ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quantiser:
    """The learned codec's KL-aware quantiser. Latent j of iteration i, with posterior N(μ_q, σ_q²) and prior
    N(μ_p, σ_p²), gets a *level* ℓ: ℓ = 0 when its KL is below `skip_nats` (the posterior is the prior: ẑ = μ_p,
    no value sent), else ℓ = 1 + clip(round(log2(σ_p / σ_q)), 0, levels − 1), a grid of step
    s = Δ σ_p 2^(1−ℓ) ≈ Δ σ_q (the posterior's scale) centred on μ_p, and the integer k = round((μ_q − μ_p)/s).
    The levels are coded under a categorical model per iteration (`probs` [T, levels + 1], fitted on training
    images by :func:`fit_quantiser`, known to both sides like the model), each k under the prior's mass on its
    bin (``QuantizedGaussian(0, σ_p / s)``). ``levels=1, skip_nats=0`` is the fixed grid Δ σ_p of every latent."""

    delta: float
    probs: np.ndarray | None = None
    levels: int = 6
    skip_nats: float = 0.05

    def choose(self, q, p) -> tuple[torch.Tensor, torch.Tensor]:
        """(level ℓ, integer k) of every latent [B, L], from the posterior q and prior p (Independent Normals
        over the last dimension)."""
        kl = kl_divergence(q.base_dist, p.base_dist)
        ratio = torch.log2(p.stddev / q.stddev).round().clamp(0, self.levels - 1)
        level = torch.where(kl < self.skip_nats, torch.zeros_like(ratio), 1 + ratio)
        k = torch.where(level > 0, torch.round((q.mean - p.mean) / self.step(level, p)), torch.zeros_like(ratio))
        return level, k.clamp(-SYMBOL_RANGE, SYMBOL_RANGE)

    def step(self, level: torch.Tensor, p) -> torch.Tensor:
        return self.delta * p.stddev * torch.exp2(1 - level.clamp_min(1))

    def rebuild(self, level: torch.Tensor, k: torch.Tensor, p) -> torch.Tensor:
        """ẑ from the level and the integer (the receiver's rule, used by the sender too)."""
        return torch.where(level > 0, p.mean + self.step(level, p) * k, p.mean)

    def scales(self, level: torch.Tensor, p) -> np.ndarray:
        """The standard deviation of the prior in units of the grid step, σ_p / s, per latent (float64)."""
        return (p.stddev / self.step(level, p)).double().cpu().numpy()

    @property
    def name(self) -> str:
        """``d<Δ>`` for the fixed grid, ``d<Δ>_s<skip_nats>_l<levels>`` for the others (a record key)."""
        fixed = self.levels == 1 and self.skip_nats == 0
        return f"d{self.delta}" if fixed else f"d{self.delta}_s{self.skip_nats}_l{self.levels}"

    def level_model(self, i: int):
        return constriction.stream.model.Categorical(self.probs[i].astype(np.float64), perfect=False)


def fit_quantiser(model, x: torch.Tensor, delta: float, levels: int = 6, skip_nats: float = 0.05) -> Quantiser:
    """A :class:`Quantiser` whose level frequencies (per iteration, add-one smoothed) are those of the images `x`
    (training images: the receiver must know the table before any image is sent)."""
    plain = Quantiser(delta, None, levels, skip_nats)
    counts = np.ones((model.cfg.iterations, levels + 1))

    def count(i, q, p):
        level, k = plain.choose(q, p)
        counts[i] += np.bincount(level.flatten().long().cpu().numpy(), minlength=levels + 1)
        return plain.rebuild(level, k, p)

    with torch.no_grad():
        model.eval()
        for _ in model.iterate(x, count):
            pass
    return Quantiser(delta, counts / counts.sum(1, keepdims=True), levels, skip_nats)


def _pack(quantiser: Quantiser, images: list[list]) -> bytes:
    """One rANS stream (32-bit words as little-endian bytes) holding the segments (iteration, levels, integers,
    scales) of each image in `images`, decoded in that order."""
    coder = constriction.stream.stack.AnsCoder()
    family = constriction.stream.model.QuantizedGaussian(-SYMBOL_RANGE, SYMBOL_RANGE)
    for segments in reversed(images):
        for i, lv, k, sd in reversed(segments):
            if len(k):
                coder.encode_reverse(k.astype(np.int32), family, np.zeros(len(k)), sd)
            coder.encode_reverse(lv.astype(np.int32), quantiser.level_model(i))
    return coder.get_compressed().astype("<u4").tobytes()


def _check(model, t: int, delta: float):
    if not 1 <= t <= model.cfg.iterations:
        raise ValueError(f"t must be in 1..{model.cfg.iterations}, got {t}")
    if not (0 < delta < 16 and float(delta * 16).is_integer()):
        raise ValueError(f"delta must be a positive multiple of 1/16 below 16, got {delta}")


@torch.no_grad()
def _send(model, x: torch.Tensor, t: int, quantiser: Quantiser):
    """The sender's path: per image its segments (iteration, levels, the integers of the latents sent, their
    scales), the receiver's image, the KL of the first t iterations per image and the symbols (levels, integers)."""
    _check(model, t, quantiser.delta)
    model.eval()
    sent: list = []
    kls: list = []

    def choose(i, q, p):
        if i >= t:
            return p.mean
        level, k = quantiser.choose(q, p)
        sent.append((level.to(torch.int32).cpu().numpy(), k.to(torch.int32).cpu().numpy(), quantiser.scales(level, p)))
        kls.append(kl_divergence(q, p))
        return quantiser.rebuild(level, k, p)

    steps = list(model.iterate(x, choose))
    per_image = [[(i, lv[b], k[b][lv[b] > 0], sd[b][lv[b] > 0]) for i, (lv, k, sd) in enumerate(sent)]
                 for b in range(x.shape[0])]
    return per_image, model.image(steps[-1]["canvas"]), torch.stack(kls, -1).sum(-1), [(lv, k) for lv, k, _ in sent]


@torch.no_grad()
def encode(model, x: torch.Tensor, t: int, quantiser: Quantiser) -> tuple[list[bytes], list[tuple]]:
    """Compress each image of `x` [B, C, H, W] to a bitstream carrying its first t iterations (a 2-byte header,
    t and Δ, and the rANS words). Returns the bitstreams and the symbols sent (per iteration, the levels and
    the integers as int32 arrays [B, L])."""
    per_image, _, _, symbols = _send(model, x, t, quantiser)
    head = HEADER.pack(t, int(quantiser.delta * 16))
    return [head + _pack(quantiser, [segments]) for segments in per_image], symbols


@torch.no_grad()
def decode(model, streams: list[bytes], quantiser: Quantiser) -> tuple[torch.Tensor, list[tuple]]:
    """Decode bitstreams (all with the same header; `quantiser` is the sender's) into images [B, C, H, W] (the
    decoder continues from the prior mean after the iterations sent) and the symbols read (as :func:`encode`
    returns them)."""
    headers = {HEADER.unpack(s[:HEADER.size]) for s in streams}
    if len(headers) != 1:
        raise ValueError("decode a batch of bitstreams with one header (same t and Δ)")
    (t, delta16), = headers
    if delta16 != int(quantiser.delta * 16):
        raise ValueError(f"the streams were coded with Δ = {delta16 / 16}, the quantiser has {quantiser.delta}")
    model.eval()
    family = constriction.stream.model.QuantizedGaussian(-SYMBOL_RANGE, SYMBOL_RANGE)
    coders = [constriction.stream.stack.AnsCoder(np.frombuffer(s[HEADER.size:], dtype="<u4").astype(np.uint32))
              for s in streams]
    n = model.cfg.latents_per_iteration
    read: list[tuple] = []

    def choose(i, q, p):
        if i >= t:
            return p.mean
        level = np.stack([c.decode(quantiser.level_model(i), n) for c in coders]).astype(np.int32)
        lv = torch.as_tensor(level, dtype=p.mean.dtype, device=p.mean.device)
        scale, k = quantiser.scales(lv, p), np.zeros_like(level)
        for b, c in enumerate(coders):
            mask = level[b] > 0
            if mask.any():
                k[b, mask] = c.decode(family, np.zeros(int(mask.sum())), scale[b][mask])
        read.append((level, k))
        return quantiser.rebuild(lv, torch.as_tensor(k, dtype=p.mean.dtype, device=p.mean.device), p)

    steps = list(model.iterate(None, choose, batch=len(streams)))
    return model.image(steps[-1]["canvas"]).to(model.canvas0.device), read


@torch.no_grad()
def reconstruct_quantised(model, x: torch.Tensor, t: int, quantiser: Quantiser) -> torch.Tensor:
    """What the receiver of :func:`encode` (x, t, quantiser) sees, computed without entropy coding (for checking)."""
    return _send(model, x, t, quantiser)[1]


@dataclass
class CodecPoint:
    """One operating point of a codec on a set of images."""

    codec: str
    setting: float  # quality (JPEG, WebP, AVIF), target PSNR (JPEG 2000), t (the model)
    bytes: float  # mean bytes per image, headers included
    psnr: float
    ssim: float
    encode_ms: float  # per image
    decode_ms: float
    extra: dict | None = None
    payload_bytes: float = float("nan")  # the container separated (see RATES)
    mosaic_bytes: float = float("nan")  # one file for all the images, per image
    mosaic_psnr: float = float("nan")  # the PSNR of that file's decoded images

    @property
    def bits(self) -> float:
        return 8 * self.bytes

    def rate(self, kind: str = "file") -> tuple[float, float]:
        """(bits per image, PSNR) of this point under one of :data:`RATES`."""
        if kind not in RATES:
            raise ValueError(f"unknown rate {kind!r}; choose one of {RATES}")
        return {"file": (self.bits, self.psnr), "payload": (8 * self.payload_bytes, self.psnr),
                "mosaic": (8 * self.mosaic_bytes, self.mosaic_psnr)}[kind]


@torch.no_grad()
def model_curve(model, x: torch.Tensor, quantiser: Quantiser, check: bool = True) -> list[CodecPoint]:
    """The learned codec at t = 1..T on images `x` (one batch): the three rates of :data:`RATES` (payload: the
    file minus its 2-byte header; mosaic: one stream for all the images), distortion, encode/decode time, the
    round trip (``extra['round_trip']``: symbols and images equal bit for bit) and the KL of the posteriors the
    codec quantised, along its own path (``extra['kl_bits']``, mean bits per image: the rate relative-entropy
    coding of a posterior sample would approach)."""
    original = to_uint8(x)
    points = []
    for t in range(1, model.cfg.iterations + 1):
        start = time.perf_counter()
        streams, sent = encode(model, x, t, quantiser)
        mid = time.perf_counter()
        decoded, read = decode(model, streams, quantiser)
        end = time.perf_counter()
        round_trip = all(np.array_equal(a, b) for s, r in zip(sent, read) for a, b in zip(s, r))
        per_image, expected, kl, _ = _send(model, x, t, quantiser)
        if check:
            round_trip = round_trip and torch.equal(decoded, expected)
        size, scores = float(np.mean([len(s) for s in streams])), _scores(original, to_uint8(decoded))
        points.append(CodecPoint("convdraw", t, size, **scores, encode_ms=1e3 * (mid - start) / len(x),
                                 decode_ms=1e3 * (end - mid) / len(x),
                                 extra={"round_trip": round_trip, "kl_bits": kl.mean().item() / math.log(2),
                                        "delta": quantiser.delta, "quantiser": quantiser.name},
                                 payload_bytes=size - HEADER.size,
                                 mosaic_bytes=(HEADER.size + len(_pack(quantiser, per_image))) / len(x),
                                 mosaic_psnr=scores["psnr"]))
    return points


def _scores(original, decoded):
    d = distortion(original, decoded)
    return {"psnr": d["psnr"], "ssim": d["ssim"]}


# --- the classic codecs ---------------------------------------------------------------------------------


def classic_encode(image: np.ndarray, codec: str, setting) -> bytes:
    """One 8-bit grey image [H, W] compressed by a classic codec (see :data:`CLASSIC`) at one setting."""
    if codec not in CLASSIC:
        raise ValueError(f"unknown codec {codec!r}; choose one of {sorted(CLASSIC)}")
    fmt, _, options = CLASSIC[codec]
    buf = io.BytesIO()
    Image.fromarray(image, "L").save(buf, fmt, **options(setting))
    return buf.getvalue()


def classic_decode(data: bytes) -> np.ndarray:
    """A classic codec's file back to an 8-bit grey image [H, W]."""
    return np.array(Image.open(io.BytesIO(data)).convert("L"))


def blank_bytes(codec: str, setting, shape: tuple[int, int] = (28, 28)) -> int:
    """The size of a codec's file for a blank (all-black) image of `shape` at one setting: its container."""
    return len(classic_encode(np.zeros(shape, np.uint8), codec, setting))


def mosaic(images: np.ndarray) -> np.ndarray:
    """Images [N, H, W] tiled row by row into one image of ⌈√N⌉ columns (the last row padded with black)."""
    n, h, w = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    tiles = np.zeros((rows * cols, h, w), images.dtype)
    tiles[:n] = images
    return tiles.reshape(rows, cols, h, w).transpose(0, 2, 1, 3).reshape(rows * h, cols * w)


def unmosaic(image: np.ndarray, n: int, h: int, w: int) -> np.ndarray:
    """The first `n` tiles [n, h, w] of :func:`mosaic`'s image."""
    rows, cols = image.shape[0] // h, image.shape[1] // w
    return image.reshape(rows, h, cols, w).transpose(0, 2, 1, 3).reshape(rows * cols, h, w)[:n]


def classic_curve(images: np.ndarray, codec: str, settings=None) -> list[CodecPoint]:
    """A classic codec over its settings on 8-bit grey images [N, H, W]: the three rates of :data:`RATES`,
    distortion and time."""
    points = []
    n, h, w = images.shape
    for s in settings or CLASSIC[codec][1]:
        start = time.perf_counter()
        files = [classic_encode(im, codec, s) for im in images]
        mid = time.perf_counter()
        decoded = np.stack([classic_decode(f) for f in files])
        end = time.perf_counter()
        whole = classic_encode(mosaic(images), codec, s)
        size = float(np.mean([len(f) for f in files]))
        points.append(CodecPoint(codec, s, size, **_scores(images, decoded),
                                 encode_ms=1e3 * (mid - start) / len(images),
                                 decode_ms=1e3 * (end - mid) / len(images),
                                 payload_bytes=size - blank_bytes(codec, s, (h, w)), mosaic_bytes=len(whole) / n,
                                 mosaic_psnr=distortion(images, unmosaic(classic_decode(whole), n, h, w))["psnr"]))
    return points


def model_size_bytes(model, dtype_bytes: int = 4) -> int:
    """The bytes a receiver needs to hold the model's parameters (float32 by default)."""
    return dtype_bytes * sum(p.numel() for p in model.parameters())


def psnr_at_bits(points: list[CodecPoint], bits: float) -> float:
    """PSNR of a codec at a given rate, by linear interpolation between its operating points sorted by rate
    (NaN outside the range it reaches)."""
    pts = sorted(points, key=lambda p: p.bits)
    rates = np.array([p.bits for p in pts])
    if bits < rates[0] or bits > rates[-1]:
        return float("nan")
    return float(np.interp(bits, rates, [p.psnr for p in pts]))


def bytes_at_psnr(points: list[CodecPoint], psnr: float) -> float:
    """Bytes per image a codec needs for a given PSNR, interpolated along its best curve (NaN out of range)."""
    front = pareto(points)
    values = np.array([p.psnr for p in front])
    if psnr < values[0] or psnr > values[-1]:
        return float("nan")
    return float(np.interp(psnr, values, [p.bytes for p in front]))


def pareto(points: list[CodecPoint]) -> list[CodecPoint]:
    """The operating points not beaten by a cheaper one (rate ascending, PSNR strictly rising): a codec's best
    curve when it has several settings per rate (e.g. the learned codec over t and Δ)."""
    front: list[CodecPoint] = []
    for p in sorted(points, key=lambda p: (p.bits, -p.psnr)):
        if not front or p.psnr > front[-1].psnr:
            front.append(p)
    return front


def bd_rate(reference: list[tuple[float, float]], test: list[tuple[float, float]]) -> float:
    """Bjøntegaard's delta rate of `test` against `reference`, each a list of (rate, PSNR) points: the mean
    relative rate difference at equal PSNR over the PSNR range both curves cover, in percent (negative: `test`
    needs fewer bits). Each curve is its best points (rate ascending, PSNR strictly rising), log-rate as a
    piecewise-cubic Hermite (PCHIP) interpolant of PSNR, the form of the BD-rate in current use (JVET's
    ``bdrate``); the mean of the log-rate difference is exponentiated, so two curves whose rates differ by a
    constant factor f give exactly 100 (f − 1). NaN when the ranges do not overlap or a curve has under two
    points."""
    from scipy.interpolate import PchipInterpolator

    def curve(points):
        best: list[tuple[float, float]] = []
        for r, q in sorted((r, q) for r, q in points if r > 0 and math.isfinite(r) and math.isfinite(q)):
            if not best or q > best[-1][1]:
                best.append((r, q))
        return best

    ref, new = curve(reference), curve(test)
    if len(ref) < 2 or len(new) < 2:
        return float("nan")
    lo, hi = max(ref[0][1], new[0][1]), min(ref[-1][1], new[-1][1])
    if not lo < hi:
        return float("nan")
    fits = [PchipInterpolator([q for _, q in c], np.log([r for r, _ in c])) for c in (ref, new)]
    mean_log_ratio = (fits[1].integrate(lo, hi) - fits[0].integrate(lo, hi)) / (hi - lo)
    return float(100 * (math.exp(mean_log_ratio) - 1))


def bd_rates(front: list[CodecPoint], classic: dict, kinds=RATES) -> dict[str, dict[str, float]]:
    """The learned codec's best points `front` against each classic codec ({codec: points}): {codec: {rate
    kind: BD-rate in percent}} (negative: the learned codec needs fewer bits), each rate of :data:`RATES`."""
    return {c: {k: bd_rate([p.rate(k) for p in pts], [p.rate(k) for p in front]) for k in kinds}
            for c, pts in classic.items()}


def summary_metrics(front: list[CodecPoint], classic: dict, tag: str) -> dict[str, dict[str, float]]:
    """The record's verdict metrics for data set `tag`: ``codec/bd_rate_vs_<codec>`` {tag: container separated,
    tag_file, tag_mosaic} (percent, negative: the learned codec needs fewer bits; absent where the curves do not
    overlap), ``codec/rate_over_kl`` {tag: the real rate over the KL at the learned codec's best point,
    tag_median: the median over its best curve} and ``codec/max_psnr`` {tag: its best PSNR}."""
    names = {"payload": tag, "file": f"{tag}_file", "mosaic": f"{tag}_mosaic"}
    out = {f"codec/bd_rate_vs_{c}": {names[k]: v for k, v in r.items() if math.isfinite(v)}
           for c, r in bd_rates(front, classic).items()}
    ratios = [p.bits / p.extra["kl_bits"] for p in front if p.extra["kl_bits"] > 0]
    out["codec/rate_over_kl"] = {tag: front[-1].bits / front[-1].extra["kl_bits"], f"{tag}_median": float(np.median(ratios))}
    out["codec/max_psnr"] = {tag: front[-1].psnr}
    return out


def closest_below(points: list[CodecPoint], bits: float) -> CodecPoint:
    """The point with the most bits not above `bits` (the cheapest point when none is that cheap)."""
    cheap = [p for p in points if p.bits <= bits]
    return max(cheap, key=lambda p: p.bits) if cheap else min(points, key=lambda p: p.bits)


def classic_roundtrip(images: np.ndarray, codec: str, setting) -> tuple[np.ndarray, float]:
    """Images [N, H, W] through a classic codec at one setting: the decoded images and the mean bytes."""
    files = [classic_encode(im, codec, setting) for im in images]
    return np.stack([classic_decode(f) for f in files]), float(np.mean([len(f) for f in files]))


# --- comparing the learned codec with the classic ones ------------------------------------------------------


def codec_curves(model, x: torch.Tensor, quantisers: list[Quantiser]) -> tuple[dict, dict, list[CodecPoint]]:
    """Every codec on images `x` [N, 1, H, W] in [0, 1]: the learned one with each quantiser (:func:`fit_quantiser`,
    one per grid step Δ: {Δ: points}), the classic ones ({codec: points}) and the learned codec's best curve over
    Δ (:func:`pareto`; its figure is :func:`c2f.plots.rate_distortion`)."""
    learned = {q.name: model_curve(model, x, q) for q in quantisers}
    classic = {c: classic_curve(to_uint8(x), c) for c in CLASSIC}
    return learned, classic, pareto([p for pts in learned.values() for p in pts])


def curve_metrics(learned: dict, classic: dict, tag: str) -> dict[str, dict]:
    """The record's metrics of :func:`codec_curves`: ``{"codec/<codec>/<tag>": {"bits@<setting>": ..., ...}}``
    (the three rates of :data:`RATES` and the mosaic's PSNR beside them), the learned codec as
    ``convdraw_<quantiser name>`` with the KL of what it sent, ``kl_bits@<t>``."""
    def row(p, extra=()):
        return (("bits", p.bits), ("payload_bits", p.rate("payload")[0]), ("mosaic_bits", p.rate("mosaic")[0]),
                ("mosaic_psnr", p.mosaic_psnr), ("psnr", p.psnr), ("ssim", p.ssim), *((k, p.extra[k]) for k in extra))
    out = {f"codec/convdraw_{d}/{tag}": {f"{k}@{p.setting}": v for p in pts for k, v in row(p, ("kl_bits",))}
           for d, pts in learned.items()}
    out.update({f"codec/{c}/{tag}": {f"{k}@{p.setting}": v for p in pts for k, v in row(p)}
                for c, pts in classic.items()})
    return out


def low_rate_gains(front: list[CodecPoint], classic: dict) -> dict[str, dict]:
    """Per classic codec, at its lowest-rate setting: its bytes and PSNR, the learned codec's best point that
    costs no more bytes (``front``: its best curve), the PSNR gain (dB; NaN when the learned codec cannot go
    that low) and the bytes at which the classic codec passes the learned codec's best PSNR (NaN: never)."""
    rows = {}
    for c, pts in classic.items():
        low = min(pts, key=lambda p: p.bits)
        mine = closest_below(front, low.bits)
        above = [p.bits for p in pts if p.psnr > front[-1].psnr]
        rows[c] = {"lowest rate (bytes)": low.bytes, "its PSNR (dB)": low.psnr, "Conv-DRAW bytes": mine.bytes,
                   "Conv-DRAW PSNR (dB)": mine.psnr,
                   "PSNR gain (dB)": mine.psnr - low.psnr if mine.bits <= low.bits else float("nan"),
                   "bytes where it passes Conv-DRAW's best": min(above) / 8 if above else float("nan")}
    return rows


def gain_metrics(rows: dict[str, dict]) -> dict[str, float]:
    """The record's metrics of :func:`low_rate_gains`: ``psnr_gain_vs_<codec>@low`` where the gain is finite."""
    return {f"psnr_gain_vs_{c}@low": r["PSNR gain (dB)"] for c, r in rows.items() if math.isfinite(r["PSNR gain (dB)"])}


def accounting(front: list[CodecPoint], classic: dict, model_bytes: int) -> dict[str, dict]:
    """The learned codec's fixed cost against what it saves: per classic codec, the bytes it needs for the PSNR
    of the learned codec's best point (``front[-1]``), the saving per image, the images until the model's
    `model_bytes` pay off (inf: never) and the mean encode and decode time per image; the learned codec's own
    row (``convdraw``) has its bytes and times."""
    best, rows = front[-1], {}
    for c, pts in classic.items():
        need = bytes_at_psnr(pts, best.psnr)
        saving = need - best.bytes
        rows[c] = {"bytes at Conv-DRAW's best PSNR": need, "saving per image (bytes)": saving,
                   "images until the model pays off": model_bytes / saving if saving > 0 else float("inf"),
                   "encode (ms/image)": np.mean([p.encode_ms for p in pts]),
                   "decode (ms/image)": np.mean([p.decode_ms for p in pts])}
    rows["convdraw"] = {"bytes at Conv-DRAW's best PSNR": best.bytes,
                        "encode (ms/image)": np.mean([p.encode_ms for p in front]),
                        "decode (ms/image)": np.mean([p.decode_ms for p in front])}
    return rows


def equal_rate_rows(model, x: torch.Tensor, front: list[CodecPoint], classic: dict, quantisers: list[Quantiser],
                    reference: str = "jpeg"):
    """The images `x` from every codec at its setting closest to (not above) the lowest rate of `reference` (a
    codec that cannot go that low at its lowest setting): rows of images [N, 1, H, W] on the CPU, their labels
    (codec and bytes really used), and that rate in bits."""
    target = min(p.bits for p in classic[reference])
    mine = closest_below(front, target)
    quantiser = next(q for q in quantisers if q.name == mine.extra["quantiser"])
    streams, _ = encode(model, x, mine.setting, quantiser)
    rows, labels = [x, decode(model, streams, quantiser)[0]], ["data", f"convdraw {mine.bytes:.0f} B"]
    for c, pts in classic.items():
        decoded, size = classic_roundtrip(to_uint8(x), c, closest_below(pts, target).setting)
        rows.append(torch.from_numpy(decoded).float().unsqueeze(1) / 255)
        labels.append(f"{c} {size:.0f} B")
    return [r.cpu() for r in rows], labels, target
