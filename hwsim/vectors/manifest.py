"""The vector-set manifest: its structure, and the set's files it vouches for
(specs/vectors.md §1, §5, §6).

Everything here reads, nothing writes. Every path taken from a manifest goes through
:func:`confined` before it is opened: relative, made of ``[A-Za-z0-9_.-]`` names, no ``.``
or ``..`` component, no symbolic link on the way. Messages quote manifest fields (with
``repr`` where they are free text), never the contents of a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hwsim.errors import HwsimError

MANIFEST = "manifest.json"
FORMAT_NAME = "hwsim-vectors"
FORMAT_VERSION = 1
#: Marker file present in a set's temporary directory while it is being written (§1).
PARTIAL_MARKER = ".hwsim-partial"
#: Largest manifest.json read (bytes).
MAX_MANIFEST_BYTES = 64 << 20
#: Largest array a manifest may declare (elements), §5.
MAX_ARRAY_ELEMENTS = 1 << 28
MAX_ARRAY_DIMS = 8

NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")
_PATH_RE = re.compile(r"^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*$")
_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def path_problem(rel: object) -> str | None:
    """Why ``rel`` is not a confined set path (§1), or None if it is one."""
    if not isinstance(rel, str):
        return f"expected a relative path string, got {type(rel).__name__}"
    if not _PATH_RE.match(rel) or any(part in (".", "..") for part in rel.split("/")):
        return (f"{rel!r} is not a path inside the set (expected names of [A-Za-z0-9_.-] "
                "joined by '/', no '.' or '..', not absolute)")
    return None


def confined(set_dir: Path, rel: object, what: str) -> Path:
    """``set_dir / rel`` after checking that it stays inside the set: a valid relative path
    (:func:`path_problem`) with no symbolic link among its components. HwsimError otherwise,
    naming ``what``; nothing is opened."""
    why = path_problem(rel)
    if why:
        raise HwsimError(f"{what}: {why}")
    cur = set_dir
    for part in str(rel).split("/"):
        cur = cur / part
        if cur.is_symlink():
            raise HwsimError(f"{what}: {rel} is a symbolic link; a vector set holds only "
                             "regular files and directories (§1)")
    return cur


def load_manifest_json(vec_dir: str | Path) -> dict[str, Any]:
    """The parsed ``manifest.json`` of a set, checked to be a hwsim vector manifest of a
    version this hwsim reads (structure not yet validated: :func:`manifest_problems`)."""
    d = Path(vec_dir)
    path = d / MANIFEST
    if not d.is_dir():
        raise HwsimError(f"vectors {d}: not a directory")
    if path.is_symlink():
        raise HwsimError(f"vectors {d}: {MANIFEST} is a symbolic link; not read (§1)")
    if not path.is_file():
        raise HwsimError(f"vectors {d}: no {MANIFEST} (not a vector set, or an interrupted write)")
    size = path.stat().st_size
    if size > MAX_MANIFEST_BYTES:
        raise HwsimError(f"vectors {path}: {size} bytes; a manifest is at most "
                         f"{MAX_MANIFEST_BYTES} bytes")
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise HwsimError(f"vectors {path}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise HwsimError(f"vectors {path}: malformed JSON ({exc.msg} at line {exc.lineno} "
                         f"column {exc.colno})") from None
    except RecursionError:
        raise HwsimError(f"vectors {path}: malformed JSON (nested too deeply)") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise HwsimError(f"vectors {path}: not a {FORMAT_NAME} manifest (expected an object "
                         f"with \"format\": \"{FORMAT_NAME}\")")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise HwsimError(f"vectors {path}: format_version {version!r}; this hwsim reads "
                         f"version {FORMAT_VERSION}")
    return manifest


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _array_problems(where: str, fmt: object) -> list[str]:
    if not isinstance(fmt, dict):
        return [f"{where}: expected an object, got {type(fmt).__name__}"]
    out: list[str] = []
    why = path_problem(fmt.get("hex"))
    if why:
        out.append(f"{where}.hex: {why}")
    shape = fmt.get("shape")
    if (not isinstance(shape, list) or len(shape) > MAX_ARRAY_DIMS
            or not all(_is_int(v) and v >= 0 for v in shape)):
        out.append(f"{where}.shape: expected a list of at most {MAX_ARRAY_DIMS} non-negative "
                   f"ints, got {shape!r:.80}")
    else:
        count = 1
        for v in shape:
            count *= v
        if count > MAX_ARRAY_ELEMENTS:
            out.append(f"{where}.shape: {count} elements; at most {MAX_ARRAY_ELEMENTS}")
        axes = fmt.get("axes")
        if (not isinstance(axes, list) or len(axes) != len(shape)
                or not all(isinstance(a, str) for a in axes)):
            out.append(f"{where}.axes: expected {len(shape)} axis names, got {axes!r:.80}")
    bits = fmt.get("bits")
    if not _is_int(bits) or not 1 <= bits <= 64:
        out.append(f"{where}.bits: expected an int in [1, 64], got {bits!r:.40}")
    if not isinstance(fmt.get("signed"), bool):
        out.append(f"{where}.signed: expected true or false, got {fmt.get('signed')!r:.40}")
    return out


def _layer_problems(i: int, entry: object, seen: set[str]) -> tuple[list[str], list[str]]:
    """(problems, paths the layer references) of ``layers[i]``."""
    where = f"layers[{i}]"
    if not isinstance(entry, dict):
        return [f"{where}: expected an object, got {type(entry).__name__}"], []
    out: list[str] = []
    name = entry.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        out.append(f"{where}.name: expected [A-Za-z0-9_.-]+, got {name!r:.80}")
    elif name in seen:
        out.append(f"{where}.name: duplicate layer name {name!r}")
    else:
        seen.add(name)
    if not isinstance(entry.get("op"), str):
        out.append(f"{where}.op: expected a string, got {entry.get('op')!r:.40}")
    if not isinstance(entry.get("params", {}), dict):
        out.append(f"{where}.params: expected an object")
    refs: list[str] = []
    why = path_problem(entry.get("npz"))
    if why:
        out.append(f"{where}.npz: {why}")
    else:
        refs.append(entry["npz"])
    arrays = entry.get("arrays")
    if not isinstance(arrays, dict) or not arrays:
        out.append(f"{where}.arrays: expected a non-empty object")
        return out, refs
    for aname, fmt in arrays.items():
        if not NAME_RE.match(aname):
            out.append(f"{where}.arrays: array name {aname!r:.80} is not [A-Za-z0-9_.-]+")
            continue
        probs = _array_problems(f"{where}.arrays.{aname}", fmt)
        out.extend(probs)
        if not probs:
            refs.append(fmt["hex"])
    return out, refs


def manifest_problems(manifest: Mapping[str, Any]) -> list[str]:
    """Every violation of the manifest's structure (§5), each naming its field."""
    out: list[str] = []
    layers = manifest.get("layers")
    refs: list[str] = []
    if not isinstance(layers, list):
        out.append(f"layers: expected a list, got {type(layers).__name__}")
    else:
        seen: set[str] = set()
        for i, entry in enumerate(layers):
            probs, paths = _layer_problems(i, entry, seen)
            out.extend(probs)
            refs.extend(paths)
    files = manifest.get("files")
    if not isinstance(files, dict):
        out.append(f"files: expected an object, got {type(files).__name__}")
    else:
        for rel, digest in files.items():
            why = path_problem(rel)
            if why:
                out.append(f"files: {why}")
            elif rel == MANIFEST:
                out.append(f"files: {MANIFEST} cannot list itself")
            if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
                out.append(f"files[{rel!r:.80}]: expected a 64-digit lower-case hex SHA-256")
        for rel in refs:
            if rel not in files:
                out.append(f"files: {rel} is referenced by a layer but not listed")
    source = manifest.get("source")
    if source is not None and not isinstance(source, dict):
        out.append(f"source: expected an object or null, got {type(source).__name__}")
    return out


def set_problems(d: Path, manifest: Mapping[str, Any]) -> tuple[list[str], set[str]]:
    """Problems of the set's files against a well-formed manifest (§6 step 2), and the
    listed files that are missing or differ. Symbolic links are reported, never followed;
    only regular files are hashed."""
    problems: list[str] = []
    bad: set[str] = set()
    files: Mapping[str, str] = manifest["files"]
    for rel, digest in files.items():
        try:
            path = confined(d, rel, "files")
        except HwsimError as exc:
            problems.append(str(exc))
            bad.add(rel)
            continue
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            problems.append(f"missing file {rel}")
            bad.add(rel)
            continue
        if not stat.S_ISREG(mode):
            problems.append(f"{rel}: not a regular file")
            bad.add(rel)
            continue
        got = sha256_file(path)
        if got != digest:
            problems.append(f"{rel}: SHA-256 mismatch (manifest {digest[:12]}…, file {got[:12]}…)")
            bad.add(rel)
    listed_dirs = {"/".join(rel.split("/")[:i])
                   for rel in files for i in range(1, rel.count("/") + 1)}
    for root, dirs, names in os.walk(d, followlinks=False):
        for name in sorted(dirs + names):
            p = Path(root) / name
            rel = p.relative_to(d).as_posix()
            if p.is_symlink():
                problems.append(f"symbolic link {rel!r}: a vector set holds no links (§1)")
            elif p.is_dir():
                if rel not in listed_dirs:
                    problems.append(f"unlisted directory {rel!r}")
            elif rel != MANIFEST and rel not in files:
                problems.append(f"unlisted file {rel}" if _PATH_RE.match(rel)
                                else f"unlisted file {rel!r}")
        dirs[:] = [n for n in dirs if not (Path(root) / n).is_symlink()]
    return problems, bad


def complete_set_problems(d: Path) -> list[str]:
    """Why ``d`` is not a complete hwsim vector set that hwsim may replace or remove (§1):
    empty when it is one."""
    try:
        manifest = load_manifest_json(d)
    except HwsimError as exc:
        return [str(exc)]
    problems = manifest_problems(manifest)
    if problems:
        return problems
    return set_problems(d, manifest)[0]
