"""Where the bundled program files live (written by `python -m onnx_models.build`)."""

from __future__ import annotations

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent
MLP_TRAIN_PATH = MODELS_DIR / "mlp_train.onnx"
MLP_TRAIN_FLOAT_PATH = MODELS_DIR / "mlp_train_float32.onnx"



def find_program(name_or_path: str) -> Path | None:
    """A path to an existing .onnx file, or the file of the program bundled under that name."""
    path = Path(name_or_path)
    if path.exists():
        return path
    bundled = MODELS_DIR / f"{name_or_path.removesuffix('.onnx')}.onnx"
    return bundled if bundled.is_file() else None


def bundled_names() -> list[str]:
    return sorted(p.name.removesuffix(".onnx") for p in MODELS_DIR.glob("*.onnx"))


__all__ = ["MLP_TRAIN_FLOAT_PATH", "MLP_TRAIN_PATH", "MODELS_DIR", "bundled_names", "find_program"]
