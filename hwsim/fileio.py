"""Atomic file writes and directory swaps: a reader never sees a half-written model,
report or vector set (specs/vectors.md §1)."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_write", "exchange_dirs", "flock_dir", "try_flock_dir", "umask"]

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def umask() -> int:
    """The process's file-creation mask (read without changing it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory, then
    ``os.replace`` (atomic on POSIX). Parent directories are created; the file gets the
    permissions a plain ``open(path, "wb")`` would give (0o666 less the umask)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _renameat2():
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def exchange_dirs(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> None:
    """Swap two existing directories so that every observer sees either both old or both new.

    Linux ``renameat2(RENAME_EXCHANGE)`` swaps atomically. Where it is unavailable (another
    OS, an old C library, a file system that refuses it) the swap is three renames through a
    fresh sibling name: ``b`` is then absent for the instant between the first two, and if
    the second rename fails the first is undone. Raises OSError if the swap cannot be done
    (both paths are then unchanged).
    """
    fn = _renameat2()
    if fn is not None:
        if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise OSError(err, os.strerror(err), os.fspath(b))
    parent = Path(b).parent
    aside = Path(tempfile.mkdtemp(prefix=f".{Path(b).name}.swap-", dir=parent))
    held = aside / "held"
    os.rename(b, held)
    try:
        os.rename(a, b)
    except BaseException:
        os.rename(held, b)
        os.rmdir(aside)
        raise
    os.rename(held, a)
    os.rmdir(aside)


@contextlib.contextmanager
def flock_dir(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive ``flock`` on a directory (blocking). The lock lives on the
    directory's own inode, so nothing is created, and it is released when the process ends."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def try_flock_dir(path: str | os.PathLike[str]) -> int | None:
    """An fd holding an exclusive ``flock`` on a directory, or None if another process holds
    it (or the path is not a directory). The caller closes the fd to release the lock."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd
