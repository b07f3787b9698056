"""Fixtures of the end-to-end tests: toy program files, and a fresh suite per test on the
session's anvil node (its clock only moves forward, so every test uses relative times)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from _e2e import Fleet, Suite, deploy, toy_file


@pytest.fixture(scope="session")
def programs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("programs")


@pytest.fixture
def toys(programs_dir):  # noqa: ANN201
    """toys(seed, steps=12) -> path of that toy program's file."""
    return lambda seed, steps=12: toy_file(programs_dir, seed, steps)


@pytest.fixture
def suite(anvil, tmp_path) -> Suite:
    return deploy(anvil, tmp_path)


@pytest.fixture
def fleet(suite, tmp_path) -> Iterator[Fleet]:
    """fleet(kind, key_index, programs, name, **options) -> a Daemon, killed in teardown."""
    f = Fleet(suite, tmp_path)
    try:
        yield f
    finally:
        f.kill_all()
