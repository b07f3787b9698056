"""Write the bundled program files: `python -m onnx_models.build [--out DIR] [--check]`.

- mlp_train.onnx          the integer training program (demo defaults, see onnx_models.mlp)
- mlp_train_float32.onnx  its float32 twin (accuracy and onnxruntime speed baseline)

The builders are deterministic, so `--check` verifies that the files on disk are exactly what
the current code builds (exit 1 if not) without writing anything.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import onnx

from .files import MODELS_DIR
from .mlp import build_float_training_graph, build_training_program


def bundled_models() -> dict[str, onnx.ModelProto]:
    return {
        "mlp_train.onnx": build_training_program(),
        "mlp_train_float32.onnx": build_float_training_graph(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m onnx_models.build", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=MODELS_DIR, help="output directory (default: the package)")
    ap.add_argument("--check", action="store_true", help="only check that the files are up to date")
    args = ap.parse_args(argv)
    stale = []
    for name, model in bundled_models().items():
        onnx.checker.check_model(model, full_check=True)
        data = model.SerializeToString()
        path = args.out / name
        if args.check:
            if not path.exists() or path.read_bytes() != data:
                stale.append(name)
            continue
        args.out.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"wrote {path} ({len(data):,} bytes)")
    if stale:
        print(f"out of date: {', '.join(stale)}; run python -m onnx_models.build", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
