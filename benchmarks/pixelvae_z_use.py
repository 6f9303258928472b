"""Issue 24: what keeps a PixelVAE's z used at chapter 06's CPU default budget?

An ablation through the book's own training loop (:func:`c2f.experiment.run_trials`, i.e. ``c2f.train``),
at chapter 06's `default` profile (5,000 static-binarized training images, 3 epochs of batch 32 = 471 steps,
Adam 1e-3, decoder of 3 gated layers of 16 channels, kernels 5 then 3, latent 16; 300 random test images,
K = 10), one setting per row:

* ``pixelcnn``          the PixelCNN without z (the NLL reference; exact likelihood);
* ``bias``              the chapter's PixelVAE "z as bias": z enters every gated layer through a linear map
                        (a per-layer bias), i.e. it is *already* unmasked: settings (a) = (b) for it;
* ``bias_warm``         (b) + KL warm-up over `--long-warmup` epochs instead of 1;
* ``bias_fb``           (b) + free bits λ per latent unit;
* ``up``                the chapter's "z upsampled": the z-map concatenated with the image *before* the
                        mask-A layer (so pixel i never sees its own z-map entry): setting (a);
* ``up_fb``             (a) + free bits: (e), separates the masking from the training recipe;
* ``zmap``              (b) for the spatial variant: the same upsampling network, its map added to the
                        pre-activations of *every* gated layer (both stacks) through an unmasked 1×1
                        convolution, plus the per-layer bias from z; the image alone enters the mask-A layer;
* ``zmap_warm``         (c) = zmap + the longer warm-up;
* ``zmap_fb``           (d) = zmap + free bits.

Each (setting, seed) is scored once and appended to a JSON file (so an interrupted run keeps what it did and a
rerun skips it): test ELBO, NLL (K importance samples, per image for the paired comparison), KL, KL per unit,
KL-active units (:func:`c2f.evaluate.kl_active_units`, > 0.1 nat), variance-active units, the KL at the end of
each epoch and every 50 steps, the training wall time, the parameter count, and the class-kept measures with the
book's cached MNIST classifier: `n_groups` groups of `group` samples that share z ~ p(z) and redraw the pixels'
noise — the share of samples 2..m of a group classified as sample 1 (``class_kept_fixed_z``) — and the same with
one noise field shared and z redrawn (``class_kept_fixed_noise``). For the PixelCNN (no z) the first is the class
agreement of independent samples, the chance level of its own class mix (the second is 1: same noise, same image).

    PYTHONPATH=$PWD C2F_THREADS=1 python benchmarks/pixelvae_z_use.py --quick      # seconds: checks it runs
    PYTHONPATH=$PWD C2F_THREADS=1 python benchmarks/pixelvae_z_use.py --seeds 0 1 --settings bias zmap_fb
    PYTHONPATH=$PWD python benchmarks/pixelvae_z_use.py --report                   # the tables from the JSON
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from c2f import data
from c2f.evaluate import active_units, evaluate, kl_active_units, latent_means
from c2f.experiment import Trial, mnist_classifier, parameter_count, run_trials
from c2f.models import PixelVAE, PixelVAEConfig
from c2f.models.pixelvae import (GatedLayer, PixelCNNDecoder, _gate, receptive_field_rows, shift_down,
                                 shift_right)
from c2f.nn import ConvDecoder, mlp
from c2f.objectives import ElboTerms, negative_elbo
from c2f.stats import compare, interval
from c2f.train import TrainConfig, cache_dir

# chapter 06's default profile (notebooks/06_pixelvae.py)
DEFAULT = dict(train_size=5000, test_size=300, batch_size=32, lr=1e-3, epochs=3, kl_warmup_epochs=1.0,
               latent_dim=16, layers=3, channels=16, kernel_size=3, up_channels=8, enc_channels=(16, 32),
               conv_features=128, iw_samples=10)
CHAPTER_NAMES = {"pixelcnn": "pixelcnn", "bias": "pixelvae", "up": "pixelvae_up"}  # their names in chapter 06
QUICK = dict(DEFAULT, train_size=256, test_size=32, epochs=1, kl_warmup_epochs=0.5, iw_samples=2)


# --- the variant: z in every gated layer, unmasked -----------------------------------------------------------


class ZMapGatedLayer(GatedLayer):
    """A gated layer whose pre-activations (vertical and horizontal stack) also get a 1×1 convolution of a z-map
    [B, M, H, W]: the map at (r, c) is a function of z alone, so adding it at (r, c) needs no mask."""

    def __init__(self, in_channels, channels, kernel_size, mask_a, cond_dim, map_channels):
        super().__init__(in_channels, channels, kernel_size, mask_a, cond_dim)
        self.map_v = nn.Conv2d(map_channels, 2 * channels, 1, bias=False)
        self.map_h = nn.Conv2d(map_channels, 2 * channels, 1, bias=False)

    def forward(self, v, h, z=None, zmap=None):
        v_pre = self.v_conv(F.pad(v, self.pad_v)) + self.cond_v(z)[:, :, None, None] + self.map_v(zmap)
        h_in = shift_right(h) if self.mask_a else h
        h_pre = (self.h_conv(F.pad(h_in, self.pad_h)) + self.v_to_h(shift_down(v_pre))
                 + self.cond_h(z)[:, :, None, None] + self.map_h(zmap))
        h_new = self.h_out(_gate(h_pre))
        return _gate(v_pre), h_new + h if self.residual else h_new


class ZMapDecoder(PixelCNNDecoder):
    """The PixelCNN decoder with z as a per-layer bias *and* z's upsampled map (the chapter's upsampling network)
    added to every gated layer through unmasked 1×1 convolutions; the image alone enters the mask-A layer."""

    def __init__(self, cfg: PixelVAEConfig, cond_dim: int):
        super().__init__(replace(cfg, conditioning="bias"), cond_dim)
        self.zmap = nn.Sequential(
            mlp([cond_dim, cfg.conv_features], cfg.activation, last_activation=True),
            ConvDecoder(cfg.conv_features, (cfg.up_channels, *cfg.image_shape[1:]),
                        tuple(reversed(cfg.enc_channels)), cfg.activation))
        self.layers = nn.ModuleList(
            ZMapGatedLayer(cfg.image_shape[0] if i == 0 else cfg.channels, cfg.channels,
                           cfg.kernel_size + 2 if i == 0 else cfg.kernel_size, i == 0, cond_dim, cfg.up_channels)
            for i in range(cfg.layers))

    def features(self, z):
        return None if z is None else (z, self.zmap(z))

    def forward(self, x, cond=None):
        z, zmap = cond
        zmap = zmap[:, :, :x.shape[2]]  # sampling passes the rows drawn so far
        v = h = x
        for layer in self.layers:
            v, h = layer(v, h, z, zmap)
        return self.head(h)


class ZMapPixelVAE(PixelVAE):
    """PixelVAE with :class:`ZMapDecoder` (its own class name keeps its checkpoints apart in the cache)."""

    def __init__(self, cfg: PixelVAEConfig):
        super().__init__(replace(cfg, conditioning="bias"))
        self.cfg = cfg
        self.decoder = ZMapDecoder(cfg, cfg.latent_dim)


class ZMapPixelVAETotalFreeBits(ZMapPixelVAE):
    """:class:`ZMapPixelVAE` whose free bits apply to the KL of the whole z (one group of 16 units) instead of
    each unit: the loop's `free_bits` λ then means Σ_j KL_j is not penalised below λ."""

    def loss(self, x, kl_weight: float = 1.0, free_bits: float = 0.0):
        t = self.elbo_terms(x)
        return negative_elbo(ElboTerms(t.log_px, t.kl_dims.sum(-1, keepdim=True)), kl_weight, free_bits)


# --- the settings ------------------------------------------------------------------------------------------


def settings(p: dict, long_warmup: float, free_bits: float) -> dict:
    """name -> (label, model class, conditioning, latent_dim, warm-up epochs, free bits)."""
    w, lw, fb = p["kl_warmup_epochs"], long_warmup, free_bits
    return {
        "pixelcnn": ("PixelCNN, no z", PixelVAE, "bias", 0, w, 0.0),
        "bias": ("(a)=(b) z as bias (chapter)", PixelVAE, "bias", p["latent_dim"], w, 0.0),
        "bias_warm": (f"(c) bias + warm-up {lw:g} ep", PixelVAE, "bias", p["latent_dim"], lw, 0.0),
        "bias_fb": (f"(d) bias + free bits {fb:g}", PixelVAE, "bias", p["latent_dim"], w, fb),
        "up": ("(a) z-map concat before mask A (chapter)", PixelVAE, "upsample", p["latent_dim"], w, 0.0),
        "up_fb": (f"(e) concat + free bits {fb:g}", PixelVAE, "upsample", p["latent_dim"], w, fb),
        "zmap": ("(b) z-map 1×1 in every layer + bias", ZMapPixelVAE, "upsample", p["latent_dim"], w, 0.0),
        "zmap_warm": (f"(c) z-map + warm-up {lw:g} ep", ZMapPixelVAE, "upsample", p["latent_dim"], lw, 0.0),
        "zmap_fb": (f"(d) z-map + free bits {fb:g}", ZMapPixelVAE, "upsample", p["latent_dim"], w, fb),
        "zmap_fbt": (f"(d') z-map + free bits {fb * p['latent_dim']:g} on the whole z", ZMapPixelVAETotalFreeBits,
                     "upsample", p["latent_dim"], w, fb * p["latent_dim"]),
    }


# --- scoring -----------------------------------------------------------------------------------------------


@torch.no_grad()
def setting(name: str, table: dict, p: dict, quick: bool):
    """A setting's label, model class, model and training configs, trial name and cache key. The chapter's own
    three models keep the chapter's names and key, so that a finished book run's checkpoints (same code, config,
    data and seed: the same cache key) are loaded instead of retrained."""
    base, _, depth = name.partition("_L")  # a parametrised setting may end in _L<d>: d gated layers
    layers = int(depth) if depth else p["layers"]
    if name not in table:  # a parametrised setting: zmap_fbt<λ> (λ nats on the whole z), zmap_fbu<λ> (per unit)
        total, lam = base.startswith("zmap_fbt"), float(base[len("zmap_fbt"):])
        label = f"z-map + free bits {lam:g} {'on the whole z' if total else 'per unit'}, L = {layers}"
        table[name] = (label, ZMapPixelVAETotalFreeBits if total else ZMapPixelVAE, "upsample", p["latent_dim"],
                       p["kl_warmup_epochs"], lam)
    label, cls, cond, zdim, warm, fb = table[name]
    cfg = PixelVAEConfig(latent_dim=zdim, layers=layers, conditioning=cond, channels=p["channels"],
                         kernel_size=p["kernel_size"], up_channels=p["up_channels"],
                         enc_channels=tuple(p["enc_channels"]), conv_features=p["conv_features"])
    tcfg = TrainConfig(epochs=p["epochs"], batch_size=p["batch_size"], lr=p["lr"], kl_warmup_epochs=warm,
                       free_bits=fb)
    trial, key = (CHAPTER_NAMES[name], "06") if name in CHAPTER_NAMES and not quick else (name, "bench24")
    return label, cls, cfg, tcfg, trial, key


def fast_sample(model, z, noise: torch.Tensor) -> torch.Tensor:
    """:meth:`PixelCNNDecoder.sample` with each step cut to the rows the pixel's conditional can see
    (:func:`receptive_field_rows` above it, plus one spare): the same images for the same noise (checked by
    ``--quick``), about 2.5× fewer operations at 28 rows and 3 layers."""
    dec = model.decoder
    cond = dec.features(z) if z is not None else None
    n, _, height, width = noise.shape
    above = receptive_field_rows(dec.cfg.layers, dec.cfg.kernel_size) + 1
    x = torch.zeros_like(noise)
    for r in range(height):
        lo = max(0, r - above)
        if cond is None or cond.__class__ is torch.Tensor and cond.dim() == 2:  # no z, or z as a vector
            c_r = cond
        elif isinstance(cond, tuple):  # the z-map variant: (z, map)
            c_r = (cond[0], cond[1][:, :, lo:])
        else:  # the concatenated map
            c_r = cond[:, :, lo:]
        for c in range(width):
            p = torch.sigmoid(dec(x[:, :, lo:r + 1], c_r)[:, :, -1, c].float())
            x[:, :, r, c] = (noise[:, :, r, c] < p).float()
    return x


@torch.no_grad()
def class_kept(model, classifier, n_groups: int, group: int, seed: int, device) -> dict:
    """Share of samples 2..m of a group classified as the group's first sample: z shared (noise redrawn) and
    noise shared (z redrawn), both drawn in one batch. For a model without z both are the agreement of
    independent samples."""
    gen = torch.Generator(device="cpu").manual_seed(10_000 + seed)
    n, d = n_groups * group, model.cfg.latent_dim
    z_a = torch.randn(n_groups, d, generator=gen).repeat_interleave(group, 0)  # fixed z, noise redrawn
    u_a = torch.rand(n, 1, 28, 28, generator=gen)
    z_b = torch.randn(n, d, generator=gen)  # fixed noise, z redrawn
    u_b = torch.rand(n_groups, 1, 28, 28, generator=gen).repeat_interleave(group, 0)
    z = torch.cat([z_a, z_b]).to(device) if d else None
    x = fast_sample(model, z, torch.cat([u_a, u_b]).to(device))
    classes = classifier.predict(x).cpu()
    out = {}
    for what, c in (("fixed_z", classes[:n]), ("fixed_noise", classes[n:])):
        c = c.view(n_groups, group)
        out[f"class_kept_{what}"] = (c[:, 1:] == c[:, :1]).float().mean().item()
        out[f"class_counts_{what}"] = torch.bincount(c.flatten(), minlength=10).tolist()
    return out


def make_score(test, classifier, p, args, device):
    def score(model, s):
        t0 = time.perf_counter()
        r = evaluate(model, test, iw_samples=p["iw_samples"], seed=s, per_image=True)
        means = latent_means(model, test)
        out = {"test_elbo_nats": r["elbo_nats"], "test_nll_nats": r["nll_nats"], "kl_nats": r["kl_nats"],
               "recon_nats": r["recon_nats"], "kl_per_dim": r["kl_per_dim"],
               "active_units_kl": kl_active_units(r["kl_per_dim"]) if r["kl_per_dim"] else 0,
               "active_units_var": active_units(means)[0] if means.shape[-1] else 0,
               "test_nll_nats_per_image": r["nll_nats_per_image"], "parameters": parameter_count(model)}
        t1 = time.perf_counter()
        out.update(class_kept(model, classifier, args.groups, args.group_size, s, device))
        out["eval_s"], out["sample_s"] = t1 - t0, time.perf_counter() - t1
        return out
    return score


# --- the run -----------------------------------------------------------------------------------------------


def setup(args):
    """What both the ablation and the probe start from: the profile, the settings, the data and the classifier."""
    torch.set_num_threads(int(os.environ.get("C2F_THREADS", "1")))
    p = QUICK if args.quick else DEFAULT
    device = torch.device("cpu")
    table = settings(p, args.long_warmup, args.free_bits)
    train = data.load("binarized_mnist", "train", device=device).subset(p["train_size"], seed=None)
    test = data.load("binarized_mnist", "test", device=device).subset(p["test_size"], seed=0)
    classifier, accuracy = mnist_classifier(device, train_size=2000 if args.quick else 0, epochs=1 if args.quick else 2)
    return p, device, table, train, test, classifier, accuracy


def run(args):
    p, device, table, train, test, classifier, accuracy = setup(args)
    print(f"classifier test accuracy {accuracy:.4f}")
    out_path = Path(args.out)
    done = json.loads(out_path.read_text()) if out_path.exists() else []
    have = {(r["setting"], r["seed"], r["quick"]) for r in done}
    score = make_score(test, classifier, p, args, device)
    for s in args.seeds:
        for name in args.settings:
            if (name, s, args.quick) in have:
                continue
            label, cls, cfg, tcfg, trial, key = setting(name, table, p, args.quick)
            if args.book_cache and key == "06":
                for f in Path(args.book_cache).glob(f"06-{trial}-seed{s}-*.pt"):
                    target = cache_dir() / f.name
                    if not target.exists():
                        cache_dir().mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(f, target)
            out = run_trials([Trial(trial, lambda: cls(cfg).to(device), tcfg)], train, seeds=[s], score=score,
                             key=key + ("q" if args.quick else ""), retrain=args.retrain)[trial]
            h = out.history
            row = {"setting": name, "label": label, "seed": s, "quick": args.quick, **out.runs[0],
                   "train_s": out.train_seconds[0], "wall_s": out.wall_seconds[0],
                   "steps": h["steps"]["step"][-1], "warmup_epochs": tcfg.kl_warmup_epochs, "free_bits": tcfg.free_bits,
                   # loaded from the cache: the seed's wall time is (almost) all scoring, none of it training
                   "loaded": out.wall_seconds[0] - out.runs[0]["eval_s"] - out.runs[0]["sample_s"]
                   < 0.5 * out.train_seconds[0],
                   "kl_by_epoch": h["epochs"]["kl"], "kl_by_steps": [h["steps"]["step"], h["steps"]["kl"]],
                   "final_train_loss": h["epochs"]["loss"][-1],
                   "machine": f"{platform.node()} {platform.processor() or platform.machine()}, "
                              f"{torch.get_num_threads()} thread(s), torch {torch.__version__}"}
            done.append(row)
            out_path.write_text(json.dumps(done))
            print(f"{name:10s} seed {s}: KL {row['kl_nats']:.2f} nats, KL-active {row['active_units_kl']}, "
                  f"NLL {row['test_nll_nats']:.2f}, kept z {row['class_kept_fixed_z']:.2f} / noise "
                  f"{row['class_kept_fixed_noise']:.2f}, train {row['train_s']:.0f} s, eval {row['eval_s']:.0f} s, "
                  f"sampling {row['sample_s']:.0f} s", flush=True)
    report(done, args.quick, list(table))


# --- the probe: does z hold the class at all? -------------------------------------------------------------


@torch.no_grad()
def probe_accuracy(model, classifier, train, test, seed: int) -> float:
    """A linear probe (multinomial logistic regression, scikit-learn defaults) from one sample z ~ q(z | x)
    to the class, fitted on the training images and scored on the test images; the labels are the cached
    classifier's predictions (Larochelle's binarized MNIST has none; the classifier is 97.9 % accurate on
    MNIST's test images)."""
    from sklearn.linear_model import LogisticRegression

    gen = torch.Generator().manual_seed(20_000 + seed)

    def z_of(x):
        q = model.encode(x)
        return (q.mean + q.stddev * torch.randn(q.mean.shape, generator=gen)).numpy()

    fit = LogisticRegression(max_iter=2000).fit(z_of(train.x), classifier.predict(train.x).numpy())
    return float((fit.predict(z_of(test.x)) == classifier.predict(test.x).numpy()).mean())


def run_probe(args):
    """Add ``probe_accuracy`` to every row of the JSON that lacks it: the model is rebuilt and loaded from the
    checkpoint cache through the same run_trials call (no training when the checkpoint is there)."""
    p, device, table, train, test, classifier, _ = setup(args)
    out_path = Path(args.out)
    rows = json.loads(out_path.read_text())
    for row in rows:
        if "probe_accuracy" in row or row["quick"] != args.quick or row["setting"] == "pixelcnn":
            continue
        name, s = row["setting"], row["seed"]
        label, cls, cfg, tcfg, trial, key = setting(name, table, p, args.quick)
        out = run_trials([Trial(trial, lambda: cls(cfg).to(device), tcfg)], train, seeds=[s],
                         score=lambda m, s_: {"probe_accuracy": probe_accuracy(m, classifier, train, test, s_)},
                         key=key + ("q" if args.quick else ""))[trial]
        row["probe_accuracy"] = out.runs[0]["probe_accuracy"]
        out_path.write_text(json.dumps(rows))
        print(f"{name:10s} seed {s}: linear probe of z ~ q(z|x) for the class: {row['probe_accuracy']:.3f}", flush=True)


# --- the report --------------------------------------------------------------------------------------------


def _ms(values, digits=2, worst=None):
    v = np.asarray(values, dtype=float)
    s = f"{v.mean():.{digits}f}" + (f" ± {v.std(ddof=1):.{digits}f}" if len(v) > 1 else "")
    if worst is not None and len(v) > 1:
        s += f" (worst {worst(v):.{digits}f})"
    return s


def chance(row) -> float:
    """The class agreement of two independent samples of the model, Σ_c p_c², from the classes of all its
    class-kept samples (both measures): the level both shares reach when neither z nor the noise decides."""
    counts = np.asarray(row["class_counts_fixed_z"]) + np.asarray(row["class_counts_fixed_noise"])
    p = counts / counts.sum()
    return float((p ** 2).sum())


def report(rows, quick=False, order=None):
    rows = [r for r in rows if r["quick"] == quick]
    by = {}
    for r in rows:
        by.setdefault(r["setting"], {})[r["seed"]] = r
    order = [n for n in (order or list(by)) if n in by]
    ref = by.get("pixelcnn", {})
    print("| setting | seeds | steps | params | KL nats | KL-active /16 | var-active /16 | −ELBO | NLL (K) | "
          "NLL − PixelCNN (paired 95 % CI) | class kept, z fixed | class kept, noise fixed | chance Σ p_c² | "
          "probe of z for the class | train s/seed |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in order:
        runs = by[name]
        seeds = sorted(runs)
        rs = [runs[s] for s in seeds]
        col = lambda k: [r[k] for r in rs]  # noqa: E731
        common = [s for s in seeds if s in ref]
        if name != "pixelcnn" and len(common) >= 2:
            a = np.array([runs[s]["test_nll_nats_per_image"] for s in common])
            b = np.array([ref[s]["test_nll_nats_per_image"] for s in common])
            c = compare(a, b, "test_nll_nats", names=(name, "pixelcnn"))
            d = c.difference
            diff = f"{d.mean:+.2f} ({d.low:+.2f} to {d.high:+.2f}; {c.verdict.replace('A', name).replace('B', 'PixelCNN')})"
        else:
            diff = "–"
        print(f"| {rs[0]['label']} | {','.join(map(str, seeds))} | {rs[0]['steps']} | {rs[0]['parameters']:,} | "
              f"{_ms(col('kl_nats'), 2, np.min)} | {_ms(col('active_units_kl'), 1, np.min)} | "
              f"{_ms(col('active_units_var'), 1, np.min)} | {_ms([-x for x in col('test_elbo_nats')], 2, np.max)} | "
              f"{_ms(col('test_nll_nats'), 2, np.max)} | {diff} | {_ms(col('class_kept_fixed_z'), 2, np.min)} | "
              f"{_ms(col('class_kept_fixed_noise'), 2, np.max)} | {_ms([chance(r) for r in rs], 2)} | "
              f"{_ms([r['probe_accuracy'] for r in rs], 2, np.min) if all('probe_accuracy' in r for r in rs) else '–'} | "
              f"{_ms(col('train_s'), 0)} |")
    print()
    print("KL (nats, training minibatch mean) at the end of each epoch, per seed:")
    for name in order:
        print(f"- {name}: " + "; ".join(f"seed {s}: " + ", ".join(f"{k:.2f}" for k in by[name][s]["kl_by_epoch"])
                                         for s in sorted(by[name])))
    machines = sorted({r["machine"] for r in rows})
    print(f"\nmachine: {'; '.join(machines)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="256 images, 1 epoch, 1 seed: checks that it runs")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--settings", nargs="+", default=["pixelcnn", "bias", "up", "zmap", "zmap_fb", "zmap_warm",
                                                      "bias_fb", "up_fb", "bias_warm"])
    ap.add_argument("--long-warmup", type=float, default=2.0, help="epochs of the longer KL warm-up (c)")
    ap.add_argument("--free-bits", type=float, default=0.5, help="nats per latent unit (d), (e)")
    ap.add_argument("--groups", type=int, default=8, help="groups for the class-kept measures")
    ap.add_argument("--group-size", type=int, default=5, help="samples per group")
    ap.add_argument("--out", default="benchmarks/pixelvae_z_use.json")
    ap.add_argument("--retrain", action="store_true")
    ap.add_argument("--book-cache", default="", help="a book run's checkpoint cache: chapter 06's own pixelcnn, "
                    "pixelvae and pixelvae_up are loaded from it when their cache keys match")
    ap.add_argument("--report", action="store_true", help="only print the tables from --out")
    ap.add_argument("--probe", action="store_true", help="add the linear probe's class accuracy to --out's rows "
                    "(models loaded from the cache)")
    args = ap.parse_args()
    if args.quick:
        args.seeds, args.groups, args.group_size = args.seeds[:1], 2, 2
        args.out = args.out.replace(".json", "_quick.json")
    if args.probe:
        run_probe(args)
        return
    if args.report:
        report(json.loads(Path(args.out).read_text()), args.quick)
        return
    run(args)


if __name__ == "__main__":
    main()
