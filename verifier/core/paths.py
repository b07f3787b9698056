"""Where bisectml keeps its files: `$BISECTML_HOME`, by default `~/.bisectml`."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    return Path(os.environ.get("BISECTML_HOME", Path.home() / ".bisectml"))


__all__ = ["home"]
