"""Self-test verdicts remembered per machine.

The fast kernels (verifier.engine.fastpath) and the compiled steps' kernels (verifier.engine.compiled) enter
use only after their conformance batteries pass, which takes one to two seconds. A process
reuses the verdicts that an earlier process reached on the same machine, with the same code,
Python, numpy and BLAS. It keys them by a fingerprint of all of these and the CPU's features,
so any change tests again. `BISECTML_SELFTEST=always` tests on every start. Each new
fingerprint adds a file; a family keeps its KEEP most recently written (installs of a few
versions side by side each keep theirs, upgrades do not pile up).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from verifier.core.paths import home

ENV = "BISECTML_SELFTEST"
KEEP = 8  # verdict files per family
_SOURCES = ("core/dtypes.py", "engine/fastpath.py", "engine/fastpath_elementwise.py", "engine/compiled.py", "engine/ops")


def _cpu_features() -> str:
    try:  # Linux: the model and feature flags of the first CPU
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return "\n".join(sorted({ln for ln in lines if ln.startswith(("model name", "flags", "Features"))}))
    except OSError:
        return platform.processor()


def fingerprint(family: str) -> str:
    """What the verdicts of `family` depend on: the kernels' code, the interpreter, numpy and
    its BLAS, and the CPU."""
    h = hashlib.sha256()
    here = Path(__file__).resolve().parents[1]  # verifier/
    for name in _SOURCES:
        p = here / name
        for f in sorted(p.rglob("*.py")) if p.is_dir() else [p]:
            h.update(f.name.encode() + b"\0" + f.read_bytes())
    config = getattr(np, "__config__", None)
    blas = json.dumps(getattr(config, "CONFIG", {}), sort_keys=True, default=str)
    for part in (family, sys.version, np.__version__, blas, platform.machine(), platform.platform(), _cpu_features()):
        h.update(part.encode() + b"\0")
    return h.hexdigest()


def remembered(family: str, compute: Callable[[], dict[str, bool]]) -> dict[str, bool]:
    """`compute()`'s verdicts, or those an earlier process stored under the same fingerprint."""
    if os.environ.get(ENV) == "always":
        return compute()
    fp = fingerprint(family)
    path = home() / "selftest" / f"{family}-{fp[:32]}.json"
    try:
        stored = json.loads(path.read_text())
        if stored["fingerprint"] == fp and all(isinstance(v, bool) for v in stored["verdicts"].values()):
            return dict(stored["verdicts"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    verdicts = compute()
    try:  # best effort: a read-only home only means testing again next time
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"fingerprint": fp, "verdicts": verdicts}, indent=1, sort_keys=True))
        os.replace(tmp, path)
        _forget_oldest(path, family)
    except OSError:
        pass
    return verdicts


def _forget_oldest(kept: Path, family: str) -> None:
    """Removes all but `kept` (just written) and the KEEP - 1 newest other verdict files of
    `family` (another process may remove the same ones at the same time: a file already gone is
    fine; timestamps may tie, so the one just written is never among them)."""
    files = []
    for f in kept.parent.glob(f"{family}-*.json"):
        try:
            if f != kept:
                files.append((f.stat().st_mtime_ns, f))
        except OSError:
            continue
    for _, f in sorted(files, reverse=True)[KEEP - 1 :]:
        f.unlink(missing_ok=True)


__all__ = ["ENV", "KEEP", "fingerprint", "remembered"]
