"""Writing a golden-vector set atomically, as a store that only replaces what it wrote
(specs/vectors.md §1, §3, §4).

A set is a directory::

    manifest.json                 written last; its presence means "complete"
    <layer>/<array>.hex           $readmemh text, one word per line (§2)
    <layer>/vectors.npz           the same arrays as int64 (uint64 for unsigned 64-bit) (§3)
    source/...                    model and data to regenerate from (§5), when given

:func:`write_vectors` builds the whole set in a locked temporary directory next to the
target (``.<name>.tmp-XXXX``), writes ``manifest.json`` last, then installs it under a lock
on the parent directory: into an absent or empty target, or by an atomic swap with a
*complete* hwsim vector set (:func:`hwsim.vectors.manifest.complete_set_problems`). Anything
else at the target is refused and left untouched. Stale temporaries of killed writers that
are provably hwsim's are removed; others are left alone.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwsim import __version__
from hwsim.errors import HwsimError
from hwsim.fileio import exchange_dirs, flock_dir, try_flock_dir, umask
from hwsim.vectors.hexfmt import check_width, encode_hex, hex_digits
from hwsim.vectors.manifest import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST,
    NAME_RE,
    PARTIAL_MARKER,
    complete_set_problems,
    path_problem,
    sha256_file,
)

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "MANIFEST", "LayerVectors", "VectorArray",
           "check_target", "sha256_file", "write_vectors"]

_NAME_RE = NAME_RE


@dataclass(frozen=True)
class VectorArray:
    """One integer array of a layer: its values, word width, signedness and axis names."""

    data: np.ndarray
    bits: int
    signed: bool
    axes: tuple[str, ...]

    def __post_init__(self) -> None:
        check_width(self.bits)
        a = np.asarray(self.data)
        if a.dtype.kind not in "iu":
            raise HwsimError(f"vector array: expected an integer array, got dtype {a.dtype}")
        if len(self.axes) != a.ndim:
            raise HwsimError(
                f"vector array axes: expected {a.ndim} axis names for shape {a.shape}, "
                f"got {self.axes!r}"
            )
        object.__setattr__(self, "data", a)
        object.__setattr__(self, "axes", tuple(self.axes))


@dataclass(frozen=True)
class LayerVectors:
    """The vectors of one layer: named arrays and JSON-compatible parameters."""

    name: str
    op: str
    arrays: Mapping[str, VectorArray]
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise HwsimError(
                f"layer name {self.name!r}: expected letters, digits, '_', '.', '-' only"
            )
        for k in self.arrays:
            if not _NAME_RE.match(k):
                raise HwsimError(f"layer {self.name} array name {k!r}: expected [A-Za-z0-9_.-]+")


def _npz_dtype(va: VectorArray) -> type:
    return np.uint64 if (va.bits == 64 and not va.signed) else np.int64


def _write_layer(tmp: Path, lv: LayerVectors) -> dict[str, Any]:
    ldir = tmp / lv.name
    ldir.mkdir()
    arrays_meta: dict[str, Any] = {}
    npz_arrays: dict[str, np.ndarray] = {}
    for aname, va in lv.arrays.items():
        text = encode_hex(va.data, va.bits, va.signed, name=f"{lv.name}/{aname}")
        rel = f"{lv.name}/{aname}.hex"
        (tmp / rel).write_text(text, encoding="ascii")
        npz_arrays[aname] = np.ascontiguousarray(va.data, dtype=_npz_dtype(va))
        arrays_meta[aname] = {
            "hex": rel,
            "shape": list(va.data.shape),
            "axes": list(va.axes),
            "bits": va.bits,
            "signed": va.signed,
            "hex_digits": hex_digits(va.bits),
            "npz_dtype": np.dtype(_npz_dtype(va)).name,
            "order": "row-major",
        }
    with (ldir / "vectors.npz").open("wb") as fh:
        np.savez(fh, **npz_arrays)
    return {
        "name": lv.name,
        "op": lv.op,
        "npz": f"{lv.name}/vectors.npz",
        "arrays": arrays_meta,
        "params": dict(lv.params),
    }


def _is_stale_hwsim_temp(p: Path) -> bool:
    """A sibling temporary that a killed hwsim writer left (§1 Leftovers)."""
    if p.is_symlink() or not p.is_dir():
        return False
    entries = list(p.iterdir())
    if not entries or (p / PARTIAL_MARKER).is_file():
        return True
    if len(entries) == 1 and entries[0].name in ("set", "held") and entries[0].is_dir():
        # an old set moved aside: hwsim 0.1's .old-*/set, or a swap interrupted mid-way
        return not complete_set_problems(entries[0])
    return not complete_set_problems(p)


def _remove_stale_temporaries(target: Path) -> None:
    """Remove the ``.<name>.{tmp,old,swap}-*`` siblings of ``target`` that no live
    writer holds and that are provably hwsim's; leave anything else alone (§1)."""
    for p in sorted(target.parent.glob(f".{glob.escape(target.name)}.*-*")):
        kind = p.name[len(target.name) + 2:].split("-", 1)[0]
        if kind not in ("tmp", "old", "swap"):
            continue
        fd = try_flock_dir(p)
        if fd is None:
            continue
        try:
            if _is_stale_hwsim_temp(p):
                shutil.rmtree(p)
        finally:
            os.close(fd)


def check_target(out_dir: str | Path) -> Path:
    """The absolute target path if a vector set may be written there (absent, an empty
    directory, or a complete unchanged hwsim set, §1); HwsimError naming it otherwise.
    Looks under the parent-directory lock, so a concurrent writer's swap is never seen
    half-way. Commands call it before long work; :func:`write_vectors` checks again when it
    installs."""
    target = Path(out_dir).absolute()
    if not target.parent.is_dir():
        return _check_target(target)
    with flock_dir(target.parent):
        return _check_target(target)


def _check_parents(target: Path) -> None:
    """The nearest existing ancestor of ``target`` must be a directory."""
    for parent in (target.parent, *target.parent.parents):
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise HwsimError(f"vectors output {target}: {parent} is not a directory")
            return


def _check_target(target: Path) -> Path:
    """:func:`check_target` for a caller that holds the parent lock (or has no parent)."""
    _check_parents(target)
    if target.is_symlink():
        raise HwsimError(f"vectors output {target}: is a symbolic link; give the directory "
                         "itself (hwsim replaces only a vector set it wrote)")
    if not target.exists():
        return target
    if not target.is_dir():
        raise HwsimError(f"vectors output {target}: exists and is not a directory; "
                         "choose another --out")
    if not any(target.iterdir()):
        return target
    problems = complete_set_problems(target)
    if problems:
        reason = problems[0].replace(f"vectors {target}: ", "")
        more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
        raise HwsimError(
            f"vectors output {target}: not a vector set; choose another --out (hwsim "
            f"replaces only a complete set it wrote, unchanged; here: {reason}{more})"
        )
    return target


def _install(tmp: Path, target: Path) -> None:
    """Put the complete set ``tmp`` at ``target`` under the parent-directory lock (§1)."""
    with flock_dir(target.parent):
        _remove_stale_temporaries(target)
        _check_target(target)
        if not target.exists() or not any(target.iterdir()):
            os.rename(tmp, target)
            return
        exchange_dirs(tmp, target)
        _remove_temporary(tmp)


def _remove_temporary(tmp: Path) -> None:
    """Delete the temporary ``tmp`` (a set being written, or the old set swapped out) so
    that a writer killed half-way leaves something :func:`_is_stale_hwsim_temp` knows: the
    partial marker is put in first and removed last."""
    if not tmp.is_dir() or tmp.is_symlink():
        return
    (tmp / PARTIAL_MARKER).write_bytes(b"")
    for entry in tmp.iterdir():
        if entry.name == PARTIAL_MARKER:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    (tmp / PARTIAL_MARKER).unlink()
    tmp.rmdir()


def _write_source_files(tmp: Path, files: Mapping[str, Path | bytes]) -> None:
    for rel, content in files.items():
        why = path_problem(rel)
        if why or rel.split("/")[0] != "source":
            raise HwsimError(f"vectors source file {rel!r}: expected a path under source/ "
                             f"({why or 'outside source/'})")
        dest = tmp / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            dest.write_bytes(content)
        else:
            shutil.copyfile(content, dest)


def write_vectors(
    out_dir: str | Path,
    layers: Sequence[LayerVectors],
    meta: Mapping[str, Any] | None = None,
    source_files: Mapping[str, Path | bytes] | None = None,
) -> Path:
    """Write ``layers`` as a vector set at ``out_dir`` atomically; returns the path.

    ``meta`` is JSON-compatible data recorded in the manifest (e.g. ``seed``,
    ``array_config``, ``source`` — the model and options needed to regenerate, §5).
    ``source_files`` maps set paths under ``source/`` to a file to copy or bytes to write
    (§5); they are hashed in ``files`` like the vectors. An existing complete vector set at
    ``out_dir`` is replaced atomically; anything else there is an error and is left as it
    is (§1). Layer names must be unique.
    """
    target = Path(out_dir).absolute()
    names = [lv.name for lv in layers]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise HwsimError(f"vectors: duplicate layer name(s) {dup}")
    if names and "source" in names and source_files:
        raise HwsimError("vectors: a layer named 'source' clashes with the source/ directory")
    _check_parents(target)
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    with flock_dir(parent):  # created and locked at once: cleanup never sees it unlocked
        _check_target(target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=parent))
        fd = try_flock_dir(tmp)
        os.chmod(tmp, 0o777 & ~umask())  # as mkdir would, not mkdtemp's 0700
    try:
        (tmp / PARTIAL_MARKER).write_bytes(b"")
        layer_meta = [_write_layer(tmp, lv) for lv in layers]
        _write_source_files(tmp, source_files or {})
        files = {
            p.relative_to(tmp).as_posix(): sha256_file(p)
            for p in sorted(tmp.rglob("*"))
            if p.is_file() and p.name != PARTIAL_MARKER
        }
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "hwsim_version": __version__,
            **dict(meta or {}),
            "layers": layer_meta,
            "files": files,
        }
        text = json.dumps(manifest, indent=2, sort_keys=False) + "\n"
        part = tmp / (MANIFEST + ".part")
        part.write_text(text, encoding="utf-8")
        os.replace(part, tmp / MANIFEST)
        (tmp / PARTIAL_MARKER).unlink()
        _install(tmp, target)
    except BaseException:
        try:
            _remove_temporary(tmp)
        except OSError:
            pass  # left for the next writer's cleanup (it still holds the marker)
        raise
    finally:
        if fd is not None:
            os.close(fd)
    return target
