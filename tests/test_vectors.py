"""Tests of hwsim.vectors (specs/vectors.md) on synthetic layers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwsim.arith import RequantConfig, make_requant_params, requantize
from hwsim.errors import HwsimError
from hwsim.vectors import (
    check_vectors,
    decode_hex,
    encode_hex,
    layer_names,
    layer_vectors,
    load_layer_vectors,
    read_manifest,
    sha256_file,
    write_vectors,
)
from hwsim.vectors import writer as writer_mod


def _conv_acc_einsum(x, w, bias, zx, stride, pad):
    """Independent conv accumulator (no overflow at these sizes): pad with zx, einsum."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=zx)
    m, c, kh, kw = w.shape
    oh = (xp.shape[2] - kh) // stride + 1
    ow = (xp.shape[3] - kw) // stride + 1
    acc = np.zeros((x.shape[0], m, oh, ow), dtype=np.int64)
    for i in range(kh):
        for j in range(kw):
            rows = slice(i, i + stride * (oh - 1) + 1, stride)
            cols = slice(j, j + stride * (ow - 1) + 1, stride)
            patch = xp[:, :, rows, cols]
            acc += np.einsum("nchw,mc->nmhw", patch, w[:, :, i, j])
    return acc + bias[None, :, None, None]


def make_layers(seed: int = 3):
    rng = np.random.default_rng(seed)
    zx = -5
    x = rng.integers(-128, 128, size=(1, 3, 6, 6)).astype(np.int64)
    w = rng.integers(-127, 128, size=(4, 3, 3, 3)).astype(np.int64)
    bias = rng.integers(-2000, 2000, size=4).astype(np.int64) - zx * w.reshape(4, -1).sum(1)
    acc = _conv_acc_einsum(x, w, bias, zx, stride=1, pad=1)
    rq = make_requant_params(rng.uniform(1e-4, 5e-3, size=4), RequantConfig(mode="tflite"),
                             zero_point=3)
    out = requantize(acc, rq, channel_axis=1)
    conv = layer_vectors(
        "conv1", "conv", input=x, weight=w, bias=bias, requant=rq, acc=acc, output=out,
        valid_cycle=np.arange(acc.size).reshape(acc.shape) + 17, act_bits=8, act_signed=True,
        weight_bits=8, acc_bits=32, acc_policy="wrap",
        conv={"strides": (1, 1), "pads": (1, 1, 1, 1), "dilations": (1, 1), "group": 1,
              "x_zero_point": zx},
    )
    xg = rng.integers(0, 256, size=(2, 10)).astype(np.int64)
    wg = rng.integers(-8, 8, size=(5, 10)).astype(np.int64)
    bg = rng.integers(-500, 500, size=5).astype(np.int64)
    accg = xg @ wg.T + bg
    rqg = make_requant_params(0.01, RequantConfig(mode="dyadic", multiplier_bits=12),
                              zero_point=128, out_bits=8, out_signed=False)
    outg = requantize(accg, rqg, channel_axis=1)
    gemm = layer_vectors(
        "fc", "gemm", input=xg, weight=wg, bias=bg, requant=rqg, acc=accg, output=outg,
        valid_cycle=np.full(accg.shape, 99), act_bits=8, act_signed=False, weight_bits=4,
        acc_bits=20, acc_policy="wrap",
    )
    return [conv, gemm]


@pytest.fixture
def vec_dir(tmp_path):
    return write_vectors(tmp_path / "vec", make_layers(), meta={"seed": 3})


def test_hex_format_exact_text():
    """§2: two's complement, ceil(bits/4) lower-case digits, one word per line."""
    assert encode_hex(np.array([-1, 0, 127, -128]), 8, True) == "ff\n00\n7f\n80\n"
    assert encode_hex(np.array([[-1, 5], [2047, -2048]]), 12, True) == "fff\n005\n7ff\n800\n"
    assert encode_hex(np.array([10, 3]), 4, False) == "a\n3\n"
    assert encode_hex(np.array([-1]), 5, True) == "1f\n"
    with pytest.raises(HwsimError,
                       match=r"vector x: values \[-129, -129\] do not fit 8-bit signed"):
        encode_hex(np.array([-129]), 8, True, name="x")
    with pytest.raises(HwsimError, match="line 2: expected 2 hex digits"):
        decode_hex("ff\nfff\n", 8, True)


@given(st.integers(1, 64), st.booleans(), st.integers(0, 2**32 - 1))
def test_hex_round_trip(bits, signed, seed):
    """§2: decode_hex(encode_hex(v)) == v for every width and signedness."""
    rng = np.random.default_rng(seed)
    if signed:
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    else:
        lo, hi = 0, min((1 << bits) - 1, 2**63 - 1)
    v = np.array([lo, hi, *rng.integers(lo, hi, size=5, endpoint=True)], dtype=np.int64)
    back = decode_hex(encode_hex(v, bits, signed), bits, signed)
    assert back.astype(np.int64).tolist() == v.tolist()


def test_write_then_read_equal(vec_dir):
    """§3, §5: hex and npz read back equal to what was written; manifest lists hashes."""
    layers = make_layers()
    assert layer_names(vec_dir) == ["conv1", "fc"]
    man = read_manifest(vec_dir)
    assert man["seed"] == 3 and man["format_version"] == 1 and "hwsim_version" in man
    for rel, digest in man["files"].items():
        assert sha256_file(vec_dir / rel) == digest
    assert "manifest.json" not in man["files"]
    for lv in layers:
        for source in ("npz", "hex"):
            got = load_layer_vectors(vec_dir, lv.name, source=source)
            assert got["op"] == lv.op
            for name, va in lv.arrays.items():
                assert got[name].shape == va.data.shape
                assert np.array_equal(got[name].astype(np.int64), va.data)
    fmt = man["layers"][0]["arrays"]["acc"]
    assert fmt["axes"] == ["n", "m", "oh", "ow"] and fmt["bits"] == 32 and fmt["hex_digits"] == 8
    text = (vec_dir / "conv1" / "output.hex").read_text()
    assert len(text.splitlines()) == 1 * 4 * 6 * 6


def test_clean_set_verifies(vec_dir):
    """§6: a freshly written set has no problems (recomputation agrees, tolerance 0)."""
    assert check_vectors(vec_dir) == []


def test_every_flipped_bit_is_reported(vec_dir):
    """§6: a single flipped bit in any file is reported, naming the file."""
    files = read_manifest(vec_dir)["files"]
    for rel in files:
        path = vec_dir / rel
        orig = path.read_bytes()
        data = bytearray(orig)
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
        problems = check_vectors(vec_dir)
        assert any(rel in p and "SHA-256 mismatch" in p for p in problems), (rel, problems)
        path.write_bytes(orig)
    assert check_vectors(vec_dir) == []


def test_missing_and_unlisted_files_are_reported(vec_dir):
    """§6: a missing file and an extra file are each reported."""
    (vec_dir / "fc" / "bias.hex").unlink()
    (vec_dir / "conv1" / "extra.txt").write_text("x")
    problems = check_vectors(vec_dir)
    assert "missing file fc/bias.hex" in problems
    assert "unlisted file conv1/extra.txt" in problems


def test_consistent_but_wrong_values_are_caught_by_recomputation(vec_dir):
    """§6 step 4: an output changed in both hex and npz with re-hashed manifest is caught."""
    layers = make_layers()
    conv = layers[0]
    bad_out = conv.arrays["output"].data.copy()
    bad_out[0, 2, 3, 4] += 1
    arrays = dict(conv.arrays)
    arrays["output"] = type(conv.arrays["output"])(bad_out, 8, True, ("n", "m", "oh", "ow"))
    bad = type(conv)(conv.name, conv.op, arrays, conv.params)
    d = write_vectors(vec_dir.parent / "bad", [bad, layers[1]])
    problems = check_vectors(d)
    assert len(problems) == 1
    assert problems[0].startswith("layer conv1 output: 1 of 144 values differ from recomputed")
    assert "(0, 2, 3, 4)" in problems[0]


def test_regenerator_hook_is_compared(vec_dir):
    """§6 step 5: arrays regenerated from the recorded source must be equal."""
    man_path = vec_dir / "manifest.json"
    man = json.loads(man_path.read_text())
    man["source"] = {"model": "synthetic"}
    man_path.write_text(json.dumps(man))

    def regen_ok(manifest):
        return {lv.name: {k: v.data for k, v in lv.arrays.items()} for lv in make_layers()}

    def regen_bad(manifest):
        out = regen_ok(manifest)
        out["fc"]["valid_cycle"] = out["fc"]["valid_cycle"] + 1
        return out

    assert check_vectors(vec_dir, regenerate=regen_ok) == []
    problems = check_vectors(vec_dir, regenerate=regen_bad)
    assert len(problems) == 1 and problems[0].startswith("layer fc valid_cycle: 10 of 10")


def test_interrupted_write_leaves_no_manifest(tmp_path, monkeypatch):
    """§1: a failure during the write leaves no manifest, no temp dir, the old set intact."""
    layers = make_layers()
    real = writer_mod._write_layer
    calls = {"n": 0}

    def failing(tmp, lv):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full (injected)")
        return real(tmp, lv)

    monkeypatch.setattr(writer_mod, "_write_layer", failing)
    with pytest.raises(OSError, match="injected"):
        write_vectors(tmp_path / "vec", layers)
    assert not (tmp_path / "vec").exists()
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(writer_mod, "_write_layer", real)
    d = write_vectors(tmp_path / "vec", layers[:1])
    before = {p: p.read_bytes() for p in d.rglob("*") if p.is_file()}
    calls["n"] = 0
    monkeypatch.setattr(writer_mod, "_write_layer", failing)
    with pytest.raises(OSError):
        write_vectors(tmp_path / "vec", layers)
    after = {p: p.read_bytes() for p in d.rglob("*") if p.is_file()}
    assert before == after and check_vectors(d) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vec"]


def test_overwrite_rules_and_errors(tmp_path, vec_dir):
    """§1, §5: a vector set is replaced; another directory is refused; bad names rejected."""
    d = write_vectors(vec_dir, make_layers()[1:])
    assert layer_names(d) == ["fc"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    with pytest.raises(HwsimError, match="not a vector set; choose another --out"):
        write_vectors(other, make_layers())
    assert (other / "keep.txt").read_text() == "x"
    with pytest.raises(HwsimError, match=r"unknown layer 'nope'; the vector set has \['fc'\]"):
        load_layer_vectors(d, "nope")
    assert check_vectors(tmp_path / "missing")[0].endswith("not a directory")
    with pytest.raises(HwsimError, match="duplicate layer name"):
        write_vectors(tmp_path / "dup", make_layers()[:1] * 2)
