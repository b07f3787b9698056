"""`write_atomic` (verifier/core/paths.py): a file is replaced whole or not at all, and no
temporary file is left behind either way."""

from __future__ import annotations

import os

import pytest

from verifier.core.paths import write_atomic


def test_write_atomic__replaces_whole(tmp_path) -> None:
    path = tmp_path / "meta.json"
    path.write_bytes(b"old")
    write_atomic(path, b"new contents")
    assert path.read_bytes() == b"new contents"
    assert [p.name for p in tmp_path.iterdir()] == ["meta.json"]


def test_write_atomic__interrupted__old_file_untouched_and_no_temporary_left(tmp_path, monkeypatch) -> None:
    path = tmp_path / "meta.json"
    path.write_bytes(b"old")

    def interrupted(*_args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, b"new contents")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["meta.json"]
