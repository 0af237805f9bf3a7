"""hwsim.fileio: atomic writes (no partial file on failure, normal permissions)."""

from __future__ import annotations

import os
import stat

import pytest

from hwsim.fileio import atomic_write


def test_atomic_write_creates_parents_and_replaces(tmp_path) -> None:
    target = tmp_path / "a" / "b" / "f.bin"
    atomic_write(target, b"first")
    atomic_write(target, b"second")
    assert target.read_bytes() == b"second"
    assert os.listdir(target.parent) == ["f.bin"]


def test_atomic_write_gives_umask_permissions(tmp_path) -> None:
    mask = os.umask(0o022)
    try:
        atomic_write(tmp_path / "f", b"x")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(os.stat(tmp_path / "f").st_mode) == 0o644


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")
    with pytest.raises(TypeError):
        atomic_write(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f"]
