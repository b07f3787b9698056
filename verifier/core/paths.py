"""Where bisectml keeps its files (`$BISECTML_HOME`, by default `~/.bisectml`), and how it
replaces one without ever leaving half of it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def home() -> Path:
    return Path(os.environ.get("BISECTML_HOME", Path.home() / ".bisectml"))


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` all at once: a synced temporary file beside it, renamed over it;
    on any failure (Ctrl-C included) the temporary file is removed and `path` is untouched."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


__all__ = ["home", "write_atomic"]
