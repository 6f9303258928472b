"""Benchmark: training throughput of chapter 01's VAEs, and the wall time of each chapter profile.

    python benchmarks/bench_vae.py                         # throughput on CPU (and on CUDA when present)
    python benchmarks/bench_vae.py --run-profiles smoke    # also execute chapter profiles and time them

Throughput is measured on synthetic binary images (the data pipeline is a tensor index, so this is the
model's speed), after warm-up steps, for the chapter's default architectures. Profile wall times are read
from the records that exist (book page, smoke reference) and, with --run-profiles, measured afresh.
This is a benchmark, not a test: it prints a table and asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch

from c2f.chapters import chapter_paths, declared_parameters
from c2f.models import VAE, VAEConfig
from c2f.runner import BOOK_CHAPTERS, NBVAL_REFERENCES, run_chapter
from c2f.utils import device_description


def throughput(cfg: VAEConfig, device: torch.device, batch_size: int, steps: int, amp: bool, compile: bool) -> float:
    """Training images per second of Adam steps on the model's loss."""
    torch.manual_seed(0)
    model = VAE(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.bernoulli(torch.full((batch_size, *cfg.image_shape), 0.15, device=device))
    loss_fn = torch.compile(model.loss) if compile else model.loss

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss, _ = loss_fn(x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(5 if not compile else 20):  # warm-up (and compilation)
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--run-profiles", nargs="*", default=[], metavar="PROFILE")
    args = parser.parse_args()

    p = declared_parameters("01_vae")
    archs = {
        "vae_mlp": VAEConfig(arch="mlp", latent_dim=p["latent_dim"], hidden=tuple(p["mlp_hidden"])),
        "vae_conv": VAEConfig(arch="conv", latent_dim=p["latent_dim"], channels=tuple(p["conv_channels"]),
                              conv_features=p["conv_features"]),
    }
    settings = [(torch.device("cpu"), p["batch_size"], False, False)]
    if torch.cuda.is_available():
        gpu = torch.device("cuda")
        settings += [(gpu, p["batch_size"], False, False), (gpu, 1024, False, False), (gpu, 1024, True, False),
                     (gpu, 1024, True, True)]
    print(f"{'model':10s} {'device':34s} {'batch':>6s} {'bf16':>5s} {'compile':>8s} {'images/s':>10s}")
    for name, cfg in archs.items():
        for device, batch, amp, comp in settings:
            ips = throughput(cfg, device, batch, args.steps, amp, comp)
            print(f"{name:10s} {device_description(device):34s} {batch:6d} {str(amp):>5s} {str(comp):>8s} {ips:10.0f}")

    print(f"\n{'chapter':16s} {'profile':8s} {'wall time (s)':>14s}  source")
    for path in chapter_paths():
        for where, folder in (("book page", BOOK_CHAPTERS), ("smoke reference", NBVAL_REFERENCES)):
            record = folder / f"{path.stem}.json"
            if record.exists():
                r = json.loads(record.read_text())
                print(f"{path.stem:16s} {r['profile']:8s} {r['wall_time_s']:14.1f}  {where} ({r['device']})")
        for profile in args.run_profiles:
            with tempfile.TemporaryDirectory() as out:
                t0 = time.perf_counter()
                r = run_chapter(path, profile, out_dir=out, env={"C2F_CACHE": out})
                total = time.perf_counter() - t0
            print(f"{path.stem:16s} {profile:8s} {total:14.1f}  measured now, incl. kernel start "
                  f"(in-notebook {r['wall_time_s']} s)")


if __name__ == "__main__":
    main()
