"""Small shared helpers: seeding, device choice, atomic file writes, stable hashing, provenance."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import random
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a torch generator seeded the same way."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def get_device(name: str | None = None) -> torch.device:
    """The device to compute on: `name`, else $C2F_DEVICE, else CUDA when available, else CPU."""
    name = name or os.environ.get("C2F_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} was asked for but CUDA is not available on this machine")
    return device


def configure_threads() -> None:
    """Use ``$C2F_THREADS`` CPU threads for torch's intra-op work when it is set (torch's default otherwise).

    On a small or shared machine one thread is often faster for this book's small models: extra threads
    spin while they wait for a busy core."""
    threads = os.environ.get("C2F_THREADS")
    if threads:
        torch.set_num_threads(int(threads))


def device_description(device: torch.device) -> str:
    """What computed a page, precisely enough to know whether its last digits can repeat elsewhere: the GPU's
    name, e.g. 'cuda: NVIDIA H100 80GB HBM3', or the CPU model, the vector instruction set torch's kernels use
    and the thread count, e.g. 'cpu: AMD EPYC 7763 (AVX2), 1 thread'."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    threads = torch.get_num_threads()
    isa = torch.backends.cpu.get_cpu_capability()
    return f"cpu: {cpu_model()} ({isa}), {threads} thread{'s' if threads != 1 else ''}"


def cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU's model name (Linux's `cpuinfo`, macOS's sysctl), else the architecture, e.g. 'x86_64'."""
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    try:
        return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                              check=True, timeout=5).stdout.strip() or platform.machine()
    except (OSError, subprocess.SubprocessError):
        return platform.machine() or platform.processor() or "unknown CPU"


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Write through a temporary file in the same folder, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; give it the usual permissions
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` to `path` atomically (a reader never sees a half-written file)."""
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """`torch.save` to `path` atomically."""
    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def write_json(path: str | Path, obj: Any) -> Path:
    """Write `obj` as indented JSON, atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def stable_hash(obj: Any, length: int = 16) -> str:
    """A hex digest of `obj`'s canonical JSON form: equal inputs give equal keys across runs."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


# folders of generated pages and references: rewriting them leaves the code clean (a book is made page by page)
GENERATED = ("book/chapters", "tests/notebooks")


def _git(cwd: str | Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def uncommitted_changes(cwd: str | Path | None = None) -> list[str] | None:
    """Tracked files of the checkout at `cwd` (default: this package's) with uncommitted changes, outside
    :data:`GENERATED`; None outside git."""
    cwd = cwd or Path(__file__).resolve().parent
    excluded = [f":(top,exclude){folder}" for folder in GENERATED]
    try:
        status = _git(cwd, "status", "--porcelain", "--untracked-files=no", "--", ":(top)", *excluded)
    except (OSError, subprocess.CalledProcessError):
        return None
    return [line[3:] for line in status.splitlines() if line.strip()]


def git_commit(cwd: str | Path | None = None) -> str:
    """The checkout's HEAD commit, suffixed '-dirty' when tracked files (other than generated pages) have
    changed; 'unknown' outside git."""
    cwd = cwd or Path(__file__).resolve().parent
    try:
        commit = _git(cwd, "rev-parse", "HEAD").strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if uncommitted_changes(cwd) else "")


def versions() -> dict[str, str]:
    """Versions of the interpreter and the packages whose behaviour changes the numbers."""
    import c2f

    return {"python": platform.python_version(), "torch": torch.__version__, "c2f": c2f.__version__}


def report(line: str) -> None:
    """A line for the person watching a run, not for the page: appended to the file ``$C2F_PROGRESS`` names
    (the runner shows it on the console as it comes); nothing when unset (then tqdm shows progress)."""
    target = os.environ.get("C2F_PROGRESS")
    if target:
        with open(target, "a") as f:
            f.write(line + "\n")
