"""The exit-code contract of hwsim.cli.main, enforced in one place (issue 9): a user or
environment failure is one stderr line and exit 2, a failed check exit 1, anything else an
"internal error, please report it" line and exit 3, with the traceback only under --debug.

Failures are injected into the library call behind ``hwsim verify``
(hwsim.sources.load_model_source) so each exception type is mapped exactly once here."""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest
from hostile_util import error_line, run_cli

import hwsim.sources
from hwsim.errors import (
    EXIT_BAD_INPUT,
    EXIT_CHECK_FAILED,
    EXIT_INTERNAL,
    ConfigError,
    HwsimError,
    ModelError,
    ResourceError,
)

P = "/data/user/model.onnx"

INJECTED = {
    "hwsim-error": (HwsimError("field x: expected y"), EXIT_BAD_INPUT, "field x: expected y"),
    "model-error": (ModelError("node 'c' (Conv): bad"), EXIT_BAD_INPUT, "node 'c'"),
    "config-error": (ConfigError("array rows: expected >= 1"), EXIT_BAD_INPUT, "array rows"),
    "resource-error": (ResourceError("x needs 9 GiB; --max-memory"), EXIT_BAD_INPUT,
                       "--max-memory"),
    "file-not-found": (FileNotFoundError(errno.ENOENT, "No such file", P), EXIT_BAD_INPUT,
                       f"file not found: {P}"),
    "permission": (PermissionError(errno.EACCES, "Permission denied", P), EXIT_BAD_INPUT,
                   f"{P}: Permission denied"),
    "is-a-directory": (IsADirectoryError(errno.EISDIR, "Is a directory", P), EXIT_BAD_INPUT,
                       "expected a file, not a directory"),
    "not-a-directory": (NotADirectoryError(errno.ENOTDIR, "Not a directory", P),
                        EXIT_BAD_INPUT, "is a file, expected a directory"),
    "file-exists": (FileExistsError(errno.EEXIST, "File exists", P), EXIT_BAD_INPUT, P),
    "disk-full": (OSError(errno.ENOSPC, "No space left on device", P), EXIT_BAD_INPUT,
                  "No space left on device"),
    "read-only-fs": (OSError(errno.EROFS, "Read-only file system", P), EXIT_BAD_INPUT,
                     "Read-only file system"),
    "two-paths": (OSError(errno.EXDEV, "Invalid cross-device link", P, None, P + ".new"),
                  EXIT_BAD_INPUT, P + ".new"),
    "unicode": (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
                EXIT_BAD_INPUT, "UTF-8"),
    "memory": (MemoryError(), EXIT_BAD_INPUT, "--max-memory"),
    "multi-line-message": (HwsimError("first\nsecond"), EXIT_BAD_INPUT, "first second"),
    "runtime-bug": (RuntimeError("boom"), EXIT_INTERNAL, "internal error (RuntimeError: boom)"),
    "key-bug": (KeyError("k"), EXIT_INTERNAL, "internal error (KeyError"),
    "assert-bug": (AssertionError("invariant"), EXIT_INTERNAL, "please report it"),
    "type-bug": (TypeError("unsupported operand"), EXIT_INTERNAL, "rerun with --debug"),
    "index-bug": (IndexError("list index out of range"), EXIT_INTERNAL, "IndexError"),
}


@pytest.mark.parametrize("exc,code,needle", list(INJECTED.values()), ids=list(INJECTED))
def test_exception_maps_to_exit_code(exc, code, needle, monkeypatch, capsys) -> None:
    """Each exception type: its exit code and one line naming what went wrong."""
    def fail(path, **_):  # noqa: ANN001, ANN003, ANN202
        raise exc

    monkeypatch.setattr(hwsim.sources, "load_model_source", fail)
    rc, _, err = run_cli(["verify", "m.onnx"], capsys)
    line = error_line(err)
    assert rc == code, line
    assert line.startswith("hwsim verify: ")
    assert needle in line, line


@pytest.mark.parametrize("argv", [["--debug", "verify", "m.onnx"],
                                  ["verify", "m.onnx", "--debug"]], ids=["before", "after"])
def test_debug_shows_the_traceback_of_an_internal_error(argv, monkeypatch, capsys) -> None:
    """--debug (before or after the command) prints the traceback, then the same line."""
    def fail(path, **_):  # noqa: ANN001, ANN003, ANN202
        raise RuntimeError("boom")

    monkeypatch.setattr(hwsim.sources, "load_model_source", fail)
    rc, _, err = run_cli(argv, capsys)
    assert rc == EXIT_INTERNAL
    assert "Traceback (most recent call last)" in err and "RuntimeError: boom" in err
    assert err.rstrip().splitlines()[-1].startswith("hwsim verify: internal error")


def test_debug_does_not_change_user_errors(monkeypatch, capsys) -> None:
    """A user error stays one line without a traceback, even with --debug."""
    def fail(path, **_):  # noqa: ANN001, ANN003, ANN202
        raise ModelError("node 'c' (Conv): bad")

    monkeypatch.setattr(hwsim.sources, "load_model_source", fail)
    rc, _, err = run_cli(["--debug", "verify", "m.onnx"], capsys)
    assert rc == EXIT_BAD_INPUT and error_line(err).endswith("node 'c' (Conv): bad")


def test_interrupt_exits_130(monkeypatch, capsys) -> None:
    def fail(path, **_):  # noqa: ANN001, ANN003, ANN202
        raise KeyboardInterrupt

    monkeypatch.setattr(hwsim.sources, "load_model_source", fail)
    rc, _, err = run_cli(["verify", "m.onnx"], capsys)
    assert rc == 130 and err.strip() == "hwsim verify: interrupted"


def test_failed_check_is_exit_1(d: Path, capsys) -> None:
    """A check that ran and failed (golden != fake-quant: the demo CNN with a wrapping 16-bit
    accumulator, which overflows) is exit 1 with its result on stdout and no error line."""
    import numpy as np

    from hwsim.data import demo_model_path, load_demo_data

    x, _ = load_demo_data("test")
    np.save(d / "digits30.npy", np.asarray(x[:30], dtype=np.float32))
    rc, out, err = run_cli(["verify", demo_model_path(), "--calib", d / "digits30.npy",
                            "--acc-bits", "16", "--acc-overflow", "wrap", "--json"], capsys)
    assert rc == EXIT_CHECK_FAILED and '"ok": false' in out
    assert "error" not in err


def test_usage_error_is_one_line(capsys) -> None:
    """argparse errors are one line (no usage block) and exit 2; --help is exit 0."""
    rc, _, err = run_cli(["verify"], capsys)
    assert rc == EXIT_BAD_INPUT and error_line(err).startswith("hwsim verify: error: ")
    rc, out, _ = run_cli(["--help"], capsys)
    assert rc == 0 and "3  internal error" in out


def test_real_process_exit_code_and_one_line(d: Path) -> None:
    """The installed entry point (a real process): exit 2 and exactly one stderr line."""
    bad = d / "bad.onnx"
    bad.write_bytes(b"\x00\x01garbage")
    proc = subprocess.run([sys.executable, "-m", "hwsim.cli", "verify", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == EXIT_BAD_INPUT
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "bad.onnx" in lines[0] and "Traceback" not in proc.stderr
