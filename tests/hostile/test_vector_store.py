"""The golden-vector store under hostile inputs and faults (issue 9; specs/vectors.md §1, §5, §6).

Writer: it replaces only a complete, unchanged hwsim vector set, atomically and under a
lock, and never deletes what it did not write. Reader and checker: every path from the
manifest stays inside the set, a malformed manifest is a list of problems (never a
traceback), no file outside the set is opened and no file's contents are echoed.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hwsim.fileio as fileio
from hwsim.arith import RequantConfig, make_requant_params, requantize
from hwsim.cli import main
from hwsim.errors import HwsimError
from hwsim.vectors import (
    check_vectors,
    layer_vectors,
    load_layer_vectors,
    read_manifest,
    write_vectors,
)
from hwsim.vectors import writer as writer_mod

SECRET = "TOP-SECRET-LINE do not print me"

# --- recording every file hwsim opens (audit hook, installed once) ----------------------
_OPENED: list[str] = []
_RECORDING = [False]


def _audit(event: str, args: tuple) -> None:
    if _RECORDING[0] and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        _OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


class opened_under:
    """Context recording the paths opened under ``root`` (resolved, symlinks followed)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.paths: list[str] = []

    def __enter__(self) -> opened_under:
        _OPENED.clear()
        _RECORDING[0] = True
        return self

    def __exit__(self, *exc: object) -> None:
        _RECORDING[0] = False
        for p in _OPENED:
            real = Path(p).resolve()
            if real == self.root or self.root in real.parents:
                self.paths.append(p)


# --- a small valid set ----------------------------------------------------------------
def make_layers() -> list:
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, size=(1, 6)).astype(np.int64)
    w = rng.integers(-8, 8, size=(3, 6)).astype(np.int64)
    b = rng.integers(-100, 100, size=3).astype(np.int64)
    acc = x @ w.T + b
    rq = make_requant_params(0.02, RequantConfig(mode="dyadic", multiplier_bits=12),
                             zero_point=128, out_bits=8, out_signed=False)
    out = requantize(acc, rq, channel_axis=1)
    fc = layer_vectors("fc", "gemm", input=x, weight=w, bias=b, requant=rq, acc=acc,
                       output=out, valid_cycle=np.arange(3)[None, :] + 10, act_bits=8,
                       act_signed=False, weight_bits=4, acc_bits=20, acc_policy="wrap")
    fc2 = layer_vectors("fc2", "gemm", input=x, weight=w, bias=b, requant=rq, acc=acc,
                        output=out, valid_cycle=np.arange(3)[None, :] + 20, act_bits=8,
                        act_signed=False, weight_bits=4, acc_bits=20, acc_policy="wrap")
    return [fc, fc2]


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (links as their target string) with its bytes."""
    out: dict[str, bytes] = {}
    for dirpath, dirs, names in os.walk(root):
        for n in dirs + names:
            p = Path(dirpath) / n
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                out[rel] = b"->" + os.fsencode(os.readlink(p))
            elif p.is_file():
                out[rel] = p.read_bytes()
            else:
                out[rel + "/"] = b""
    return out


@pytest.fixture
def user(tmp_path: Path) -> Path:
    """The user's directory: a set at user/vec and unrelated user files in user/outside."""
    out = tmp_path / "outside"
    out.mkdir()
    (out / "notes.txt").write_text(SECRET + "\n")
    (out / "model.onnx").write_bytes(b"\x08\x07" * 10)
    write_vectors(tmp_path / "vec", make_layers(), meta={"seed": 1})
    return tmp_path


def set_manifest(vec: Path, edit) -> None:
    man = json.loads((vec / "manifest.json").read_text())
    edit(man)
    (vec / "manifest.json").write_text(json.dumps(man))


def rehash(vec: Path, man: dict) -> None:
    from hwsim.vectors.manifest import sha256_file

    man["files"] = {rel: sha256_file(vec / rel) for rel in man["files"] if (vec / rel).is_file()}


# --- writer: what it may replace --------------------------------------------------------
def _foreign_manifest(d: Path) -> None:
    d.mkdir()
    (d / "manifest.json").write_text('{"name": "my project", "version": 3}')
    (d / "data.csv").write_text("a,b\n1,2\n")


def _hwsim_manifest_plus_user_file(d: Path) -> None:
    write_vectors(d, make_layers())
    (d / "fc" / "my_notes.txt").write_text("mine")


def _modified_file(d: Path) -> None:
    write_vectors(d, make_layers())
    with (d / "fc" / "weight.hex").open("a") as fh:
        fh.write("0\n")


def _missing_file(d: Path) -> None:
    write_vectors(d, make_layers())
    (d / "fc2" / "acc.hex").unlink()


def _user_dir_inside(d: Path) -> None:
    write_vectors(d, make_layers())
    (d / "results").mkdir()


def _manifest_symlink(d: Path) -> None:
    d.mkdir()
    src = d.parent / "outside" / "real_manifest.json"
    write_vectors(d.parent / "other_set", make_layers())
    shutil.copy(d.parent / "other_set" / "manifest.json", src)
    os.symlink(src, d / "manifest.json")


def _future_version(d: Path) -> None:
    write_vectors(d, make_layers())
    set_manifest(d, lambda m: m.update(format_version=2))


def _plain_file(d: Path) -> None:
    d.write_text("not a directory")


def _symlink_to_set(d: Path) -> None:
    write_vectors(d.parent / "real_set", make_layers())
    os.symlink(d.parent / "real_set", d)


def _malformed_hwsim_manifest(d: Path) -> None:
    write_vectors(d, make_layers())
    set_manifest(d, lambda m: m.update(layers="everything"))


REFUSED = [
    ("foreign-manifest.json", _foreign_manifest, "not a vector set"),
    ("user-file-added-to-set", _hwsim_manifest_plus_user_file, "unlisted file fc/my_notes.txt"),
    ("user-edited-file", _modified_file, "SHA-256 mismatch"),
    ("file-missing-from-set", _missing_file, "missing file fc2/acc.hex"),
    ("user-dir-added-to-set", _user_dir_inside, "unlisted directory"),
    ("manifest-is-symlink", _manifest_symlink, "symbolic link"),
    ("future-format-version", _future_version, "format_version 2"),
    ("out-is-a-file", _plain_file, "not a directory"),
    ("out-is-a-symlink", _symlink_to_set, "symbolic link"),
    ("malformed-hwsim-manifest", _malformed_hwsim_manifest, "layers: expected a list"),
]


@pytest.mark.parametrize("case,setup,reason", REFUSED, ids=[c[0] for c in REFUSED])
def test_writer_refuses_what_it_did_not_write(user: Path, case, setup, reason) -> None:
    """§1: only a complete, unchanged hwsim set is replaced; everything else is refused and
    nothing in the user's directory changes."""
    target = user / "target"
    setup(target)
    before = snapshot(user)
    with pytest.raises(HwsimError, match="not a vector set|not a directory|symbolic link") as ei:
        write_vectors(target, make_layers()[:1])
    assert reason in str(ei.value)
    assert "\n" not in str(ei.value)
    assert snapshot(user) == before


def test_cli_refusal_is_exit_2_one_line(user: Path, capsys) -> None:
    """`hwsim vectors --out DIR` on a directory holding someone else's manifest.json: exit 2,
    one line, nothing deleted (the defect of issue 9 group 1)."""
    target = user / "proj"
    _foreign_manifest(target)
    before = snapshot(user)
    assert main(["vectors", "digits", "--out", str(target), "--layers", "fc"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and str(target) in err
    assert snapshot(user) == before


def test_writer_replaces_its_own_set_and_empty_dirs(user: Path) -> None:
    """§1: a complete set is replaced by the new one; an empty directory is filled."""
    vec = user / "vec"
    write_vectors(vec, make_layers()[:1])
    assert [e["name"] for e in read_manifest(vec)["layers"]] == ["fc"]
    assert not (vec / "fc2").exists() and check_vectors(vec) == []
    empty = user / "empty"
    empty.mkdir()
    write_vectors(empty, make_layers())
    assert check_vectors(empty) == []
    assert sorted(p.name for p in user.iterdir()) == ["empty", "outside", "vec"]


def test_parent_is_a_file(user: Path) -> None:
    with pytest.raises(HwsimError, match="is not a directory"):
        write_vectors(user / "outside" / "notes.txt" / "vec", make_layers())
    assert (user / "outside" / "notes.txt").read_text() == SECRET + "\n"


# --- writer: atomic replacement, failures, leftovers, concurrency -------------------------
def _fail(*_a, **_k):
    raise OSError(5, "injected I/O error")


@pytest.mark.parametrize("where", ["exchange", "rename-fallback"])
def test_failed_swap_keeps_the_old_set(user: Path, monkeypatch, where) -> None:
    """§1: the old set stays in place until the new one is; a failed swap (atomic, or the
    three-rename fallback failing at its second rename) leaves the old set and no temps."""
    vec = user / "vec"
    before = snapshot(vec)
    if where == "exchange":
        monkeypatch.setattr(writer_mod, "exchange_dirs", _fail)
    else:
        monkeypatch.setattr(fileio, "_renameat2", lambda: None)
        real = os.rename
        calls = {"n": 0}

        def second_fails(a, b):
            calls["n"] += 1
            if calls["n"] == 2:
                raise OSError(28, "injected: no space left")
            return real(a, b)

        monkeypatch.setattr(fileio.os, "rename", second_fails)
    with pytest.raises(OSError, match="injected"):
        write_vectors(vec, make_layers()[:1])
    monkeypatch.undo()
    assert snapshot(vec) == before and check_vectors(vec) == []
    assert sorted(p.name for p in user.iterdir()) == ["outside", "vec"]


def test_fallback_swap_replaces(user: Path, monkeypatch) -> None:
    """§1: without renameat2 the three-rename swap installs the new set."""
    monkeypatch.setattr(fileio, "_renameat2", lambda: None)
    write_vectors(user / "vec", make_layers()[:1])
    assert [e["name"] for e in read_manifest(user / "vec")["layers"]] == ["fc"]
    assert sorted(p.name for p in user.iterdir()) == ["outside", "vec"]


def test_exchange_dirs_is_a_swap(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a")
    (b / "x").write_text("b")
    fileio.exchange_dirs(a, b)
    assert (a / "x").read_text() == "b" and (b / "x").read_text() == "a"


def _stale(parent: Path, kind: str, content) -> Path:
    p = parent / f".vec.{kind}-abc123"
    p.mkdir()
    content(p)
    return p


STALE = [
    ("empty-tmp", "tmp", lambda p: None, True),
    ("partial-tmp", "tmp", lambda p: ((p / ".hwsim-partial").write_bytes(b""),
                                      (p / "fc").mkdir(), (p / "fc" / "a.hex").write_text("00\n")),
     True),
    ("complete-old-set-after-swap", "tmp", lambda p: (p.rmdir(), write_vectors(p, make_layers())),
     True),
    ("hwsim-0.1-old-set", "old", lambda p: write_vectors(p / "set", make_layers()), True),
    ("user-files-in-tmp-name", "tmp", lambda p: (p / "thesis.tex").write_text("mine"), False),
    ("user-changed-old-set", "old",
     lambda p: (write_vectors(p / "set", make_layers()), (p / "set" / "extra").write_text("x")),
     False),
    ("unknown-kind", "bak", lambda p: None, False),
]


@pytest.mark.parametrize("case,kind,content,removed", STALE, ids=[c[0] for c in STALE])
def test_stale_temporaries(user: Path, case, kind, content, removed) -> None:
    """§1 Leftovers: a writer removes siblings a killed hwsim writer left, nothing else."""
    p = _stale(user, kind, content)
    before = snapshot(p) if p.exists() else None
    write_vectors(user / "vec", make_layers())
    assert p.exists() != removed
    if not removed:
        assert snapshot(p) == before


def test_stale_temporary_of_a_live_writer_is_kept(user: Path) -> None:
    """§1: a temporary whose lock another process holds is in use, not stale."""
    p = _stale(user, "tmp", lambda p: (p / ".hwsim-partial").write_bytes(b""))
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import fcntl, os, sys, time
            fd = os.open({str(p)!r}, os.O_RDONLY)
            fcntl.flock(fd, fcntl.LOCK_EX)
            print("locked", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        write_vectors(user / "vec", make_layers())
        assert p.exists()
    finally:
        holder.kill()
        holder.wait()
    write_vectors(user / "vec", make_layers())
    assert not p.exists()


_WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    from hostile.test_vector_store import make_layers
    from hwsim.vectors import write_vectors
    layers = make_layers()
    big = [type(layers[0])(f"l{{i}}", layers[0].op, layers[0].arrays, layers[0].params)
           for i in range({n})]
    print("start", flush=True)
    for _ in range({rounds}):
        write_vectors({out!r}, big)
    print("done", flush=True)
""")


def _writer_script(out: Path, n: int, rounds: int) -> str:
    return _WRITER.format(tests=str(Path(__file__).resolve().parents[1]), out=str(out), n=n,
                          rounds=rounds)


@pytest.mark.parametrize("delay", [0.05, 0.2, 0.5])
def test_kill_9_during_write_keeps_the_old_set(user: Path, delay: float) -> None:
    """§1: a writer killed (SIGKILL) at any moment leaves either the old or the new complete
    set at DIR; the next write cleans what the killed writer left."""
    vec = user / "vec"
    proc = subprocess.Popen([sys.executable, "-c", _writer_script(vec, 40, 50)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "start"
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert check_vectors(vec, regenerate=False) == []
    write_vectors(vec, make_layers())
    assert check_vectors(vec) == []
    assert sorted(p.name for p in user.iterdir()) == ["outside", "vec"]


def _concurrent_writer(out: str, seed: int, start_at: float) -> str:
    layers = make_layers()
    time.sleep(max(0.0, start_at - time.time()))  # all writers start together
    try:
        for _ in range(25):
            write_vectors(out, layers if seed % 2 else layers[:1])
        return "ok"
    except Exception as exc:  # reported to the test, which asserts "ok"
        return f"{type(exc).__name__}: {exc}"


def test_concurrent_writers_all_succeed(user: Path) -> None:
    """§1: writers of the same DIR are serialised by the lock: every write succeeds, the
    final set verifies, and nothing is left behind."""
    vec = user / "vec"
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        pool.map(abs, range(4))  # workers started and imported before the clock starts
        start_at = time.time() + 3.0
        results = pool.starmap(_concurrent_writer, [(str(vec), i, start_at) for i in range(4)])
    assert results == ["ok"] * 4
    assert check_vectors(vec) == []
    assert sorted(p.name for p in user.iterdir()) == ["outside", "vec"]


# --- reader / checker: confinement ----------------------------------------------------
def _files_entry(rel: str):
    def edit(vec: Path, man: dict) -> None:
        man["files"][rel] = "0" * 64
    return edit


def _hex_path(rel: str):
    def edit(vec: Path, man: dict) -> None:
        man["layers"][0]["arrays"]["weight"]["hex"] = rel
        man["files"][rel] = "0" * 64
    return edit


def _npz_path(rel: str):
    def edit(vec: Path, man: dict) -> None:
        man["layers"][0]["npz"] = rel
        man["files"][rel] = "0" * 64
    return edit


def _symlinked_hex(vec: Path, man: dict) -> None:
    target = vec / "fc" / "weight.hex"
    target.unlink()
    os.symlink(vec.parent / "outside" / "notes.txt", target)


def _symlinked_layer_dir(vec: Path, man: dict) -> None:
    shutil.copytree(vec / "fc2", vec.parent / "outside" / "fc2")
    shutil.rmtree(vec / "fc2")
    os.symlink(vec.parent / "outside" / "fc2", vec / "fc2")


def _source_model(rel: str):
    def edit(vec: Path, man: dict) -> None:
        man["source"] = {"model": rel, "model_sha256": "0" * 64, "sample": 0}
        man["array_config"] = {"rows": 4, "cols": 4, "dataflow": "ws"}
    return edit


def _source_calib(vec: Path, man: dict) -> None:
    man["source"] = {"model": "digits", "calib": "../outside/notes.txt", "sample": 0}


OUTSIDE = [
    ("files-dotdot", _files_entry("../outside/notes.txt"), "not a path inside the set"),
    ("files-absolute", lambda v, m: _files_entry(str(v.parent / "outside" / "notes.txt"))(v, m),
     "not a path inside the set"),
    ("files-dot-component", _files_entry("./fc/weight.hex"), "not a path inside the set"),
    ("files-backslash", _files_entry("..\\outside\\notes.txt"), "not a path inside the set"),
    ("hex-dotdot", _hex_path("../outside/notes.txt"), "not a path inside the set"),
    ("hex-absolute", lambda v, m: _hex_path(str(v.parent / "outside" / "notes.txt"))(v, m),
     "not a path inside the set"),
    ("npz-dotdot", _npz_path("fc/../../outside/model.onnx"), "not a path inside the set"),
    ("hex-symlink-out", _symlinked_hex, "symbolic link"),
    ("layer-dir-symlink-out", _symlinked_layer_dir, "symbolic link"),
    ("source-model-absolute",
     lambda v, m: _source_model(str(v.parent / "outside" / "model.onnx"))(v, m), "not followed"),
    ("source-model-dotdot", _source_model("../outside/model.onnx"), "not followed"),
    ("source-calib-dotdot", _source_calib, "not followed"),
]


@pytest.mark.parametrize("case,edit,expect", OUTSIDE, ids=[c[0] for c in OUTSIDE])
def test_checker_never_reads_outside_the_set(user: Path, case, edit, expect) -> None:
    """§1, §6: paths from the manifest that leave the set are problems; no file outside the
    set is opened, and no file's contents appear in any problem."""
    vec = user / "vec"
    man = json.loads((vec / "manifest.json").read_text())
    edit(vec, man)
    (vec / "manifest.json").write_text(json.dumps(man))
    with opened_under(user / "outside") as rec:
        problems = check_vectors(vec)
    assert rec.paths == []
    assert problems and any(expect in p for p in problems), problems
    assert not any(SECRET in p for p in problems)
    with opened_under(user / "outside") as rec:
        for layer in ("fc", "fc2"):
            for source in ("npz", "hex"):
                try:
                    load_layer_vectors(vec, layer, source=source)
                except HwsimError as exc:
                    assert SECRET not in str(exc)
    assert rec.paths == []


def test_cli_check_outside_path_is_exit_1(user: Path, capsys) -> None:
    """`hwsim vectors --check`: a set whose files live elsewhere does not pass as OK."""
    vec = user / "vec"
    man = json.loads((vec / "manifest.json").read_text())
    _hex_path("../outside/notes.txt")(vec, man)
    (vec / "manifest.json").write_text(json.dumps(man))
    assert main(["vectors", "--check", str(vec)]) == 1
    cap = capsys.readouterr()
    assert "not a path inside the set" in cap.out and SECRET not in cap.out + cap.err
    assert "Traceback" not in cap.err


def test_hex_errors_never_echo_contents(user: Path) -> None:
    """§1: a .hex file holding text is reported by line number and length only."""
    vec = user / "vec"
    p = vec / "fc" / "weight.hex"
    n = len(p.read_text().splitlines())
    p.write_text((SECRET[:1] + "\n") * n)  # same size: one char per line instead of one digit
    man = json.loads((vec / "manifest.json").read_text())
    rehash(vec, man)
    (vec / "manifest.json").write_text(json.dumps(man))
    problems = check_vectors(vec)
    assert any("fc/weight.hex line 1: not 1 lower-case hexadecimal digits" in p
               for p in problems), problems
    assert not any("T\n" in p or SECRET in p for p in problems)


# --- malformed manifests: a list of problems, exit 1, never a traceback ------------------
def _layer0(key, value):
    return lambda m: m["layers"][0].__setitem__(key, value)


def _array0(key, value):
    return lambda m: m["layers"][0]["arrays"]["acc"].__setitem__(key, value)


MALFORMED = [
    ("layers-not-list", lambda m: m.update(layers={"fc": 1}), "layers: expected a list"),
    ("layer-not-object", lambda m: m["layers"].append(7), "layers[2]: expected an object"),
    ("layer-name-missing", lambda m: m["layers"][0].pop("name"), "layers[0].name"),
    ("layer-name-slash", _layer0("name", "a/b"), "layers[0].name"),
    ("layer-name-dup", _layer0("name", "fc2"), "duplicate layer name"),
    ("op-not-string", _layer0("op", 5), "layers[0].op"),
    ("params-list", _layer0("params", []), "layers[0].params"),
    ("arrays-empty", _layer0("arrays", {}), "layers[0].arrays"),
    ("array-name-bad", lambda m: m["layers"][0]["arrays"].update({"../x": {}}),
     "is not [A-Za-z0-9_.-]+"),
    ("shape-negative", _array0("shape", [1, -3]), "arrays.acc.shape"),
    ("shape-float", _array0("shape", [1.5, 3]), "arrays.acc.shape"),
    ("shape-huge", _array0("shape", [1 << 20, 1 << 20]), "elements; at most"),
    ("shape-deep", _array0("shape", [1] * 40), "arrays.acc.shape"),
    ("axes-wrong-count", _array0("axes", ["n"]), "arrays.acc.axes"),
    ("bits-99", _array0("bits", 99), "expected an int in [1, 64], got 99"),
    ("bits-bool", _array0("bits", True), "arrays.acc.bits"),
    ("signed-string", _array0("signed", "yes"), "arrays.acc.signed"),
    ("hex-missing", lambda m: m["layers"][0]["arrays"]["acc"].pop("hex"), "arrays.acc.hex"),
    ("files-not-object", lambda m: m.update(files=["fc/acc.hex"]), "files: expected an object"),
    ("digest-short", lambda m: m["files"].update({"fc/acc.hex": "abc"}), "64-digit"),
    ("digest-number", lambda m: m["files"].update({"fc/acc.hex": 12}), "64-digit"),
    ("file-unlisted-ref", lambda m: m["files"].pop("fc/acc.hex"), "referenced by a layer"),
    ("manifest-lists-itself", lambda m: m["files"].update({"manifest.json": "0" * 64}),
     "cannot list itself"),
    ("source-list", lambda m: m.update(source=[1, 2]), "source: expected an object"),
]


@pytest.mark.parametrize("case,edit,expect", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_manifest_is_a_problem_list(user: Path, case, edit, expect) -> None:
    """§5, §6 step 1: each structural violation is a problem naming its field; the reader
    raises one HwsimError; nothing else is opened."""
    vec = user / "vec"
    set_manifest(vec, edit)
    problems = check_vectors(vec)
    assert problems and all(p.startswith("manifest ") for p in problems), problems
    assert any(expect in p for p in problems), problems
    with pytest.raises(HwsimError, match="malformed manifest"):
        read_manifest(vec)


RAW = [
    ("not-json", b"{not json", "malformed JSON"),
    ("not-utf8", b"\xff\xfe{}", "not UTF-8"),
    ("json-array", b"[1, 2, 3]", "not a hwsim-vectors manifest"),
    ("wrong-format", b'{"format": "other"}', "not a hwsim-vectors manifest"),
    ("no-version", b'{"format": "hwsim-vectors"}', "format_version None"),
    ("version-string", b'{"format": "hwsim-vectors", "format_version": "1"}', "format_version"),
    ("deep-nesting", b'{"format": "hwsim-vectors", "x": ' + b"[" * 100000 + b"]" * 100000 + b"}",
     "malformed JSON"),
    ("empty-file", b"", "malformed JSON"),
]


@pytest.mark.parametrize("case,raw,expect", RAW, ids=[c[0] for c in RAW])
def test_unreadable_manifest(user: Path, capsys, case, raw, expect) -> None:
    vec = user / "vec"
    (vec / "manifest.json").write_bytes(raw)
    problems = check_vectors(vec)
    assert len(problems) == 1 and expect in problems[0], problems
    assert main(["vectors", "--check", str(vec)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err


def test_huge_manifest_is_not_read(user: Path) -> None:
    vec = user / "vec"
    with (vec / "manifest.json").open("r+b") as fh:
        fh.truncate(65 << 20)  # sparse: costs no disk
    problems = check_vectors(vec)
    assert len(problems) == 1 and "a manifest is at most" in problems[0]


def _hex_size_claim(vec: Path, man: dict) -> None:
    man["layers"][0]["arrays"]["acc"]["shape"] = [1, 1 << 27]
    man["layers"][0]["arrays"]["acc"]["axes"] = ["n", "m"]


def _npz_header_claim(vec: Path, man: dict) -> None:
    np.savez(vec / "fc" / "vectors.npz", **{k: np.zeros((2, 2), np.int64)
                                            for k in man["layers"][0]["arrays"]})
    rehash(vec, man)


def _npz_not_zip(vec: Path, man: dict) -> None:
    (vec / "fc" / "vectors.npz").write_bytes(b"PK\x03\x04garbage")
    rehash(vec, man)


def _npz_pickle(vec: Path, man: dict) -> None:
    np.save(vec / "fc" / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    shutil.move(vec / "fc" / "obj.npy", vec / "fc" / "vectors.npz")
    rehash(vec, man)


def _pads_huge(vec: Path, man: dict) -> None:
    man["layers"][0]["op"] = "conv"
    man["layers"][0]["params"].update(strides=[1, 1], pads=[10**9] * 4, dilations=[1, 1],
                                      group=1, x_zero_point=0)


def _acc_bits_huge(vec: Path, man: dict) -> None:
    man["layers"][0]["params"]["acc_bits"] = 10**6


def _policy_unknown(vec: Path, man: dict) -> None:
    man["layers"][0]["params"]["acc_policy"] = "explode"


def _requant_missing(vec: Path, man: dict) -> None:
    man["layers"][0]["params"].pop("requant")


def _source_unknown_key(vec: Path, man: dict) -> None:
    man["source"] = {"model": "digits", "evil": 1}


def _source_negative_sample(vec: Path, man: dict) -> None:
    man["source"] = {"model": "digits", "sample": -4}


def _source_bad_array_config(vec: Path, man: dict) -> None:
    man["source"] = {"model": "digits", "model_sha256": "0" * 64}


CONTENT = [
    ("size-claim", _hex_size_claim, "bytes, expected|header says"),
    ("npz-header-claim", _npz_header_claim, "header says"),
    ("npz-not-zip", _npz_not_zip, "not an .npz archive|unreadable .npz"),
    ("npz-pickle", _npz_pickle, "not an .npz archive|unreadable .npz"),
    ("pads-huge", _pads_huge, "params.pads"),
    ("acc-bits-huge", _acc_bits_huge, "params.acc_bits"),
    ("policy-unknown", _policy_unknown, "params.acc_policy"),
    ("requant-missing", _requant_missing, "cannot recompute"),
    ("source-unknown-key", _source_unknown_key, "unknown field"),
    ("source-negative-sample", _source_negative_sample, "source.sample"),
    ("source-digits-wrong-hash", _source_bad_array_config, "differs from this hwsim's demo"),
]


@pytest.mark.parametrize("case,edit,expect", CONTENT, ids=[c[0] for c in CONTENT])
def test_malformed_contents_are_problems(user: Path, case, edit, expect) -> None:
    """§5, §6: sizes and headers are checked before reading, parameters before computing;
    every failure is a problem line, not an exception or a huge allocation."""
    import re

    vec = user / "vec"
    man = json.loads((vec / "manifest.json").read_text())
    edit(vec, man)
    (vec / "manifest.json").write_text(json.dumps(man))
    problems = check_vectors(vec)
    assert problems and any(re.search(expect, p) for p in problems), problems
    assert all("\n" not in p for p in problems)


# --- fuzz: random and mutated manifests ------------------------------------------------
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12,
)
_KEYS = ["format", "format_version", "layers", "files", "source", "array_config", "name", "op",
         "npz", "arrays", "params", "hex", "shape", "axes", "bits", "signed", "acc_bits",
         "acc_policy", "requant", "strides", "pads", "model", "sample"]


def _mutate(obj, path: list, value):
    """Replace the node at ``path`` (a list of choices) of a JSON tree by ``value``."""
    if not path or not isinstance(obj, (dict, list)) or not obj:
        return value
    keys = list(obj.keys()) if isinstance(obj, dict) else list(range(len(obj)))
    k = keys[path[0] % len(keys)]
    obj[k] = _mutate(obj[k], path[1:], value)
    return obj


@pytest.fixture(scope="module")
def fuzz_base(tmp_path_factory) -> tuple[Path, dict]:
    d = tmp_path_factory.mktemp("fuzz") / "vec"
    write_vectors(d, make_layers())
    return d, json.loads((d / "manifest.json").read_text())


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.lists(st.integers(0, 50), max_size=6), value=_json,
       key=st.sampled_from(_KEYS), extra=_json)
def test_fuzz_mutated_manifest(fuzz_base, path, value, key, extra) -> None:
    """§6: any mutation of a valid manifest gives a list of one-line problems (or none),
    never an exception, within a bounded time."""
    d, base = fuzz_base
    work = d.parent / "work"
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(d, work)
    man = _mutate(json.loads(json.dumps(base)), path, value)
    if isinstance(man, dict):
        man.setdefault("format", "hwsim-vectors")
        man.setdefault("format_version", 1)
        man[key] = extra if key not in ("format", "format_version") else man[key]
    (work / "manifest.json").write_text(json.dumps(man))
    t0 = time.perf_counter()
    problems = check_vectors(work, regenerate=False)
    assert time.perf_counter() - t0 < 30
    assert isinstance(problems, list) and all(isinstance(p, str) and "\n" not in p
                                              for p in problems)


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=_json)
def test_fuzz_random_manifest(tmp_path_factory, doc) -> None:
    d = tmp_path_factory.mktemp("rnd")
    for wrapped in (doc, {"format": "hwsim-vectors", "format_version": 1, "layers": doc,
                          "files": doc}):
        (d / "manifest.json").write_text(json.dumps(wrapped))
        problems = check_vectors(d, regenerate=False)
        assert isinstance(problems, list) and all(isinstance(p, str) for p in problems)


def test_set_directory_gets_umask_permissions(tmp_path: Path) -> None:
    """A set directory is created as mkdir would (0o777 less the umask), not 0700."""
    import stat

    mask = os.umask(0o022)
    try:
        d = write_vectors(tmp_path / "vec", make_layers())
    finally:
        os.umask(mask)
    assert stat.S_IMODE(d.stat().st_mode) == 0o755
