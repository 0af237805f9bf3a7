"""`.tflite` import under the ``litert_ref`` profile, bit-exact against LiteRT's reference
kernels (specs/arithmetic.md §8.7, §11.3; specs/ir.md §10).

Models are built here with :class:`hwsim.frontends.tflite_write.TfliteBuilder` (no
TensorFlow): seeded random int8 weights, per-tensor and per-channel scales, biases that
drive accumulators negative, and output scales placed so that multipliers sit next to the
rounding edges (real scales just below a power of two, where QuantizeMultiplier rounds M up
to 2^31). Every output of every op type is compared with LiteRT ``BUILTIN_REF``.
int16x8 models (int16 activations, zero point 0, int8 weights, int64 or int32 biases,
§11.3.8) are tested the same way.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")
pytest.importorskip("tflite")

from ai_edge_litert.interpreter import Interpreter, OpResolverType  # noqa: E402

from hwsim.errors import ModelError  # noqa: E402
from hwsim.frontends.tflite import load_tflite  # noqa: E402
from hwsim.frontends.tflite_write import TfliteBuilder  # noqa: E402
from hwsim.reference.golden_exec import run_golden  # noqa: E402


def litert_run(model: bytes, x: np.ndarray) -> np.ndarray:
    it = Interpreter(model_content=model, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


def compare(model: bytes, x: np.ndarray) -> tuple[int, int]:
    """(outputs compared, mismatches) of hwsim golden vs LiteRT on input codes ``x``."""
    im = load_tflite(model)
    ref = litert_run(model, x)
    got = im.model_outputs(run_golden(im.qgraph, im.feeds(x)).codes)
    (y,) = got.values()
    assert y.shape == ref.shape
    return int(ref.size), int(np.count_nonzero(y != ref))


def _edge_scale(rng: np.random.Generator, real: np.ndarray | float) -> float:
    """An output scale s_out such that real/s_out sits at an awkward multiplier: half the
    time just below a power of two (M rounds to 2^31), else random."""
    r = float(np.max(real))
    if rng.random() < 0.5:
        target = 2.0 ** -int(rng.integers(6, 10)) * (1 - 2.0 ** -int(rng.integers(28, 34)))
    else:
        target = float(rng.uniform(0.002, 0.02))
    return float(np.float32(r / target))


def _act(rng: np.random.Generator) -> str:
    return str(rng.choice(["NONE", "RELU", "RELU6"]))


def _mac_model(rng: np.random.Generator, kind: str, per_channel: bool, batch: int
               ) -> tuple[bytes, tuple[int, ...]]:
    b = TfliteBuilder()
    h = w = int(rng.integers(5, 9))
    c = int(rng.integers(2, 6))
    s_x = float(np.float32(rng.uniform(0.01, 0.1)))
    z_x = int(rng.integers(-20, 20))
    if kind == "fc":
        k, m = int(rng.integers(16, 80)), int(rng.integers(8, 40))
        xshape: tuple[int, ...] = (batch, k)
        wshape: tuple[int, ...] = (m, k)
        qdim = 0
    elif kind == "conv":
        m, kh = int(rng.integers(3, 9)), int(rng.choice([1, 3]))
        xshape, wshape, qdim = (batch, h, w, c), (m, kh, kh, c), 0
    else:  # depthwise
        mult, kh = int(rng.integers(1, 3)), 3
        m = c * mult
        xshape, wshape, qdim = (batch, h, w, c), (1, kh, kh, m), 3
    ws = (rng.uniform(0.002, 0.02, m) if per_channel else np.full(1, rng.uniform(0.002, 0.02)))
    ws = ws.astype(np.float32)
    x = b.tensor("x", xshape, "int8", scale=s_x, zero_point=z_x)
    wq = rng.integers(-127, 128, wshape)
    wt = b.tensor("w", wshape, "int8", scale=ws, zero_point=np.zeros(ws.size, np.int64),
                  quantized_dimension=qdim, data=wq)
    bias_s = (np.float32(s_x) * ws).astype(np.float32)
    bt = b.tensor("b", (m,), "int32", scale=np.broadcast_to(bias_s, (m,)),
                  zero_point=np.zeros(m, np.int64), data=rng.integers(-30000, 30000, m))
    s_out = _edge_scale(rng, s_x * ws)
    act = _act(rng)
    if kind == "fc":
        yshape: tuple[int, ...] = (batch, m)
        y = b.tensor("y", yshape, "int8", scale=s_out, zero_point=int(rng.integers(-30, 30)))
        b.op("FULLY_CONNECTED", [x, wt, bt], [y], FusedActivationFunction=act)
    else:
        stride = int(rng.integers(1, 3))
        pad = str(rng.choice(["SAME", "VALID"]))
        kh = wshape[1]
        oh = -(-h // stride) if pad == "SAME" else (h - kh + stride) // stride
        yshape = (batch, oh, oh, m)
        y = b.tensor("y", yshape, "int8", scale=s_out, zero_point=int(rng.integers(-30, 30)))
        opts = dict(Padding=pad, StrideW=stride, StrideH=stride, FusedActivationFunction=act,
                    DilationWFactor=1, DilationHFactor=1)
        if kind == "conv":
            b.op("CONV_2D", [x, wt, bt], [y], **opts)
        else:
            b.op("DEPTHWISE_CONV_2D", [x, wt, bt], [y], DepthMultiplier=m // c, **opts)
    return b.finish([x], [y]), xshape


def _codes(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(-128, 128, shape).astype(np.int8)


@pytest.mark.parametrize("kind", ["conv", "depthwise", "fc"])
def test_mac_ops_bit_exact_vs_litert(kind: str) -> None:
    """CONV_2D (§8.1), DEPTHWISE_CONV_2D (§8.1) and FULLY_CONNECTED (§8.7): per-tensor and
    per-channel, ≥ 100,000 outputs each, zero mismatches."""
    rng = np.random.default_rng({"conv": 1, "depthwise": 2, "fc": 3}[kind])
    total = bad = 0
    seed = 0
    while total < 100_000:
        model, xshape = _mac_model(rng, kind, per_channel=seed % 2 == 0, batch=64)
        n, m = compare(model, _codes(rng, xshape))
        total, bad, seed = total + n, bad + m, seed + 1
    assert total >= 100_000 and bad == 0, (total, bad)


def _fc_pow2_model(rng: np.random.Generator, batch: int) -> tuple[bytes, tuple[int, ...]]:
    """FULLY_CONNECTED with power-of-two scales: acc·eff lands exactly on halves."""
    b = TfliteBuilder()
    k, m = 24, 16
    x = b.tensor("x", (batch, k), "int8", scale=2.0**-4, zero_point=3)
    w = b.tensor("w", (m, k), "int8", scale=2.0**-7, zero_point=0,
                 data=rng.integers(-127, 128, (m, k)))
    y = b.tensor("y", (batch, m), "int8", scale=2.0**-3, zero_point=0)
    b.op("FULLY_CONNECTED", [x, w, -1], [y])
    return b.finish([x], [y]), (batch, k)


def test_fc_is_float64_not_an_integer_mode() -> None:
    """§8.7: LiteRT's reference FULLY_CONNECTED (one float64 product, half away from zero)
    differs from `tflite` (random scales: double rounding) and from `tflite_single`
    (negative ties, half up) — the reason the profile gives gemm its own datapath."""
    from hwsim.arith import RequantConfig
    from hwsim.compiler.profiles import EngineProfile

    rng = np.random.default_rng(7)
    cases = [_mac_model(rng, "fc", per_channel=True, batch=256) for _ in range(4)]
    cases.append(_fc_pow2_model(rng, 256))
    diffs = {"tflite": 0, "tflite_single": 0}
    for model, xshape in cases:
        x = _codes(rng, xshape)
        ref = litert_run(model, x)
        for mode in diffs:
            im = load_tflite(model, profile=EngineProfile(mode, RequantConfig(mode=mode)))
            (y,) = im.model_outputs(run_golden(im.qgraph, im.feeds(x)).codes).values()
            diffs[mode] += int(np.count_nonzero(y != ref))
        im = load_tflite(model)
        (y,) = im.model_outputs(run_golden(im.qgraph, im.feeds(x)).codes).values()
        np.testing.assert_array_equal(y, ref)
    assert diffs["tflite"] > 0 and diffs["tflite_single"] > 0, diffs


def _elementwise_model(rng: np.random.Generator, kind: str, batch: int
                       ) -> tuple[bytes, tuple[int, ...]]:
    """ADD / MUL of a conv output and the input, AVERAGE_POOL_2D, MAX_POOL_2D, MEAN."""
    b = TfliteBuilder()
    h = int(rng.integers(6, 12))
    c = int(rng.integers(2, 6))
    s_x = float(np.float32(rng.uniform(0.01, 0.1)))
    z_x = int(rng.integers(-40, 40))
    xshape = (batch, h, h, c)
    x = b.tensor("x", xshape, "int8", scale=s_x, zero_point=z_x)
    if kind in ("add", "mul"):
        # second operand: a 1x1 conv of x (another scale and zero point)
        ws = np.float32(rng.uniform(0.005, 0.02))
        wt = b.tensor("w", (c, 1, 1, c), "int8", scale=ws, zero_point=0,
                      data=rng.integers(-127, 128, (c, 1, 1, c)))
        s_c = float(np.float32(rng.uniform(0.01, 0.2)))
        cv = b.tensor("c", xshape, "int8", scale=s_c, zero_point=int(rng.integers(-30, 30)))
        bt = b.tensor("b", (c,), "int32", scale=np.float32(s_x) * ws, zero_point=0,
                      data=rng.integers(-3000, 3000, c))
        b.op("CONV_2D", [x, wt, bt], [cv], Padding="SAME", StrideW=1, StrideH=1,
             DilationWFactor=1, DilationHFactor=1)
        lo, hi = (0.3, 3.0) if kind == "add" else (0.0005, 0.01)
        s_y = float(np.float32(rng.uniform(lo, hi) * max(s_x, s_c)))
        y = b.tensor("y", xshape, "int8", scale=s_y, zero_point=int(rng.integers(-30, 30)))
        b.op(kind.upper(), [x, cv], [y], FusedActivationFunction=_act(rng))
        return b.finish([x], [y]), xshape
    if kind == "mean":
        keep = bool(rng.integers(0, 2))
        s_y = float(np.float32(s_x * rng.uniform(0.2, 2.0)))
        ax = b.tensor("axes", (2,), "int32", data=np.array([1, 2]))
        y = b.tensor("y", (batch, 1, 1, c) if keep else (batch, c), "int8", scale=s_y,
                     zero_point=int(rng.integers(-30, 30)))
        b.op("MEAN", [x, ax], [y], KeepDims=keep)
        return b.finish([x], [y]), xshape
    k = int(rng.integers(2, 4))
    stride = int(rng.integers(1, 3))
    pad = str(rng.choice(["SAME", "VALID"]))
    oh = -(-h // stride) if pad == "SAME" else (h - k + stride) // stride
    y = b.tensor("y", (batch, oh, oh, c), "int8", scale=s_x, zero_point=z_x)
    b.op("AVERAGE_POOL_2D" if kind == "avgpool" else "MAX_POOL_2D", [x], [y], Padding=pad,
         StrideW=stride, StrideH=stride, FilterWidth=k, FilterHeight=k,
         FusedActivationFunction=_act(rng))
    return b.finish([x], [y]), xshape


@pytest.mark.parametrize("kind", ["add", "mul", "avgpool", "maxpool", "mean"])
def test_elementwise_and_pooling_bit_exact_vs_litert(kind: str) -> None:
    """ADD (§10.1, L = 20), MUL (§11.3.6), AVERAGE_POOL_2D (§11.3.4), MAX_POOL_2D, MEAN
    (§11.3.5): ≥ 100,000 outputs each, zero mismatches."""
    rng = np.random.default_rng({"add": 11, "mul": 12, "avgpool": 13, "maxpool": 14,
                                 "mean": 15}[kind])
    total = bad = 0
    while total < 100_000:
        batch = 2048 if kind == "mean" else 64
        model, xshape = _elementwise_model(rng, kind, batch)
        n, m = compare(model, _codes(rng, xshape))
        total, bad = total + n, bad + m
    assert total >= 100_000 and bad == 0, (total, bad)


def small_cnn(rng: np.random.Generator, batch: int = 1) -> bytes:
    """float32 input -> QUANTIZE -> PAD -> CONV_2D (relu6, per channel) -> DEPTHWISE_CONV_2D
    -> ADD (relu) -> MAX_POOL_2D -> AVERAGE_POOL_2D -> CONCATENATION -> RESHAPE ->
    FULLY_CONNECTED -> DEQUANTIZE."""
    b = TfliteBuilder()
    s_in, z_in = 0.02, -5
    xf = b.tensor("x", (batch, 8, 8, 2), "float32")
    xq = b.tensor("xq", (batch, 8, 8, 2), "int8", scale=s_in, zero_point=z_in)
    b.op("QUANTIZE", [xf], [xq])
    pads = b.tensor("pads", (4, 2), "int32", data=np.array([[0, 0], [1, 1], [1, 1], [0, 0]]))
    xp = b.tensor("xp", (batch, 10, 10, 2), "int8", scale=s_in, zero_point=z_in)
    b.op("PAD", [xq, pads], [xp])

    def conv(name: str, x: int, cin: int, cout: int, s_x: float, s_y: float, z_y: int,
             hw: int, pad: str, act: str, depthwise: bool = False) -> int:
        ws = rng.uniform(0.005, 0.02, cout).astype(np.float32)
        shape = (1, 3, 3, cout) if depthwise else (cout, 3, 3, cin)
        w = b.tensor(name + "_w", shape, "int8", scale=ws, zero_point=np.zeros(cout, np.int64),
                     quantized_dimension=3 if depthwise else 0,
                     data=rng.integers(-127, 128, shape))
        bias = b.tensor(name + "_b", (cout,), "int32", scale=np.float32(s_x) * ws,
                        zero_point=np.zeros(cout, np.int64),
                        data=rng.integers(-2000, 2000, cout))
        y = b.tensor(name, (batch, hw, hw, cout), "int8", scale=s_y, zero_point=z_y)
        opts = dict(Padding=pad, StrideW=1, StrideH=1, FusedActivationFunction=act,
                    DilationWFactor=1, DilationHFactor=1)
        if depthwise:
            b.op("DEPTHWISE_CONV_2D", [x, w, bias], [y], DepthMultiplier=1, **opts)
        else:
            b.op("CONV_2D", [x, w, bias], [y], **opts)
        return y

    c1 = conv("c1", xp, 2, 6, s_in, 0.05, -100, 8, "VALID", "RELU6")
    c2 = conv("c2", c1, 6, 6, 0.05, 0.04, 3, 8, "SAME", "NONE", depthwise=True)
    a = b.tensor("a", (batch, 8, 8, 6), "int8", scale=0.06, zero_point=-2)
    b.op("ADD", [c1, c2], [a], FusedActivationFunction="RELU")
    mp = b.tensor("mp", (batch, 4, 4, 6), "int8", scale=0.06, zero_point=-2)
    b.op("MAX_POOL_2D", [a], [mp], Padding="VALID", StrideW=2, StrideH=2, FilterWidth=2,
         FilterHeight=2)
    ap = b.tensor("ap", (batch, 4, 4, 6), "int8", scale=0.06, zero_point=-2)
    b.op("AVERAGE_POOL_2D", [mp], [ap], Padding="SAME", StrideW=1, StrideH=1, FilterWidth=3,
         FilterHeight=3)
    cat = b.tensor("cat", (batch, 4, 4, 12), "int8", scale=0.06, zero_point=-2)
    b.op("CONCATENATION", [mp, ap], [cat], Axis=3)
    fl = b.tensor("fl", (batch, 192), "int8", scale=0.06, zero_point=-2)
    b.op("RESHAPE", [cat], [fl], NewShape=[batch, 192])
    fw = rng.integers(-127, 128, (10, 192))
    w = b.tensor("fc_w", (10, 192), "int8", scale=0.004, zero_point=0, data=fw)
    fb = b.tensor("fc_b", (10,), "int32", scale=np.float32(0.06) * np.float32(0.004),
                  zero_point=0, data=rng.integers(-500, 500, 10))
    lq = b.tensor("logits_q", (batch, 10), "int8", scale=0.1, zero_point=4)
    b.op("FULLY_CONNECTED", [fl, w, fb], [lq])
    lf = b.tensor("logits", (batch, 10), "float32")
    b.op("DEQUANTIZE", [lq], [lf])
    return b.finish([xf], [lf])


def test_small_cnn_end_to_end_200_inputs_and_cycle_model() -> None:
    """A small CNN with every supported op, float input quantized as LiteRT's QUANTIZE
    (§11.3.7), float output: LiteRT's dequantized logits equal hwsim's codes dequantized
    (f32(s·(q − z))) on 200 inputs; the cycle model (fast and stepped) equals golden."""
    from hwsim.sim.config import ArrayConfig
    from hwsim.sim.graph import simulate_qgraph

    rng = np.random.default_rng(21)
    batch = 200
    model = small_cnn(rng, batch)
    im = load_tflite(model)
    assert [n.op for n in im.qgraph.nodes].count("litert_avgpool") == 1
    x = rng.normal(0, 1.0, (batch, 8, 8, 2)).astype(np.float32)
    ref = litert_run(model, x)
    gold = run_golden(im.qgraph, im.feeds(x))
    (codes,) = im.model_outputs(gold.codes).values()
    port = im.outputs[0]
    deq = (np.float64(np.float32(port.scale)) * (codes - port.zero_point)).astype(np.float32)
    assert ref.shape == deq.shape == (batch, 10)
    np.testing.assert_array_equal(deq, ref)
    assert len(np.unique(codes)) > 10  # not saturated: the comparison means something
    feeds = im.feeds(x[:4])
    g4 = run_golden(im.qgraph, feeds)
    cfg = ArrayConfig(rows=4, cols=4, dataflow="ws")
    for stepped in (False, True):
        sim = simulate_qgraph(im.qgraph, feeds, cfg, stepped=stepped)
        for name, val in g4.codes.items():
            np.testing.assert_array_equal(sim.codes[name], val, err_msg=name)


def _edge16(rng: np.random.Generator, real: np.ndarray | float) -> float:
    """An int16 output scale: real/s_out just below a power of two (QuantizeMultiplier
    rounds M up to 2^31, or M ≥ 0x7FFF8000 where the 16x8 kernels' reduced multiplier
    saturates to 2^15 − 1), else random."""
    r, u = float(np.max(real)), rng.random()
    p = 2.0 ** -int(rng.integers(9, 12))
    if u < 0.25:
        target = p * (1 - 2.0 ** -int(rng.integers(28, 34)))
    elif u < 0.5:
        target = p * (1 - 2.0 ** -float(rng.uniform(15.2, 17)))
    else:
        target = float(rng.uniform(0.0002, 0.002))
    return float(np.float32(r / target))


def _mac16_model(rng: np.random.Generator, kind: str, per_channel: bool, bias: str,
                 batch: int) -> tuple[bytes, tuple[int, ...]]:
    """int16 activations (zero point 0), int8 weights; ``bias``: ``int64`` (no option),
    ``int64_opt`` (quantized_bias_type INT64) or ``int32`` (quantized_bias_type INT32)."""
    import tflite

    b = TfliteBuilder()
    h = w = int(rng.integers(5, 9))
    c = int(rng.integers(2, 6))
    s_x = float(np.float32(rng.uniform(1e-4, 1e-3)))
    if kind == "fc":
        k, m = int(rng.integers(16, 80)), int(rng.integers(8, 40))
        xshape: tuple[int, ...] = (batch, k)
        wshape: tuple[int, ...] = (m, k)
        qdim = 0
    elif kind == "conv":
        m, kh = int(rng.integers(3, 9)), int(rng.choice([1, 3]))
        xshape, wshape, qdim = (batch, h, w, c), (m, kh, kh, c), 0
    else:
        mult = int(rng.integers(1, 3))
        m = c * mult
        xshape, wshape, qdim = (batch, h, w, c), (1, 3, 3, m), 3
    ws = rng.uniform(0.002, 0.02, m) if per_channel else np.full(1, rng.uniform(0.002, 0.02))
    ws = ws.astype(np.float32)
    x = b.tensor("x", xshape, "int16", scale=s_x, zero_point=0)
    wt = b.tensor("w", wshape, "int8", scale=ws, zero_point=np.zeros(ws.size, np.int64),
                  quantized_dimension=qdim, data=rng.integers(-127, 128, wshape))
    btype = "int32" if bias == "int32" else "int64"
    bt = b.tensor("b", (m,), btype, scale=np.broadcast_to(np.float32(s_x) * ws, (m,)),
                  zero_point=np.zeros(m, np.int64), data=rng.integers(-3_000_000, 3_000_000, m))
    opts: dict = {"FusedActivationFunction": _act(rng)}
    if bias != "int64":
        opts["QuantizedBiasType"] = getattr(tflite.TensorType, btype.upper())
    s_out = _edge16(rng, s_x * ws)
    if kind == "fc":
        y = b.tensor("y", (batch, m), "int16", scale=s_out, zero_point=0)
        b.op("FULLY_CONNECTED", [x, wt, bt], [y], **opts)
        return b.finish([x], [y]), xshape
    stride = int(rng.integers(1, 3))
    pad = str(rng.choice(["SAME", "VALID"]))
    kh = wshape[1]
    oh = -(-h // stride) if pad == "SAME" else (h - kh + stride) // stride
    y = b.tensor("y", (batch, oh, oh, m), "int16", scale=s_out, zero_point=0)
    opts.update(Padding=pad, StrideW=stride, StrideH=stride, DilationWFactor=1,
                DilationHFactor=1)
    if kind == "conv":
        b.op("CONV_2D", [x, wt, bt], [y], **opts)
    else:
        opts.pop("QuantizedBiasType", None)
        b.op("DEPTHWISE_CONV_2D", [x, wt, bt], [y], DepthMultiplier=mult, **opts)
    return b.finish([x], [y]), xshape


def _codes16(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(-32768, 32768, shape).astype(np.int16)


@pytest.mark.parametrize("kind", ["conv", "depthwise", "fc"])
def test_int16x8_mac_ops_bit_exact_vs_litert(kind: str) -> None:
    """int16x8 CONV_2D / DEPTHWISE_CONV_2D with an int64 bias (§11.3.8: int64 accumulator,
    reduced 15-bit multiplier, one half-up rounding), CONV_2D with an int32 bias (§8.1),
    FULLY_CONNECTED with either (§8.7): per-tensor and per-channel, ≥ 100,000 outputs each,
    zero mismatches, most outputs not saturated."""
    rng = np.random.default_rng({"conv": 61, "depthwise": 62, "fc": 63}[kind])
    biases = ["int64"] if kind == "depthwise" else ["int64", "int64_opt", "int32"]
    total = bad = inside = seed = 0
    while total < 100_000:
        bias = biases[seed % len(biases)]
        model, xshape = _mac16_model(rng, kind, seed % 2 == 0, bias, batch=32)
        x = _codes16(rng, xshape)
        im = load_tflite(model)
        ref = litert_run(model, x)
        (y,) = im.model_outputs(run_golden(im.qgraph, im.feeds(x)).codes).values()
        assert y.shape == ref.shape
        total, bad, seed = total + ref.size, bad + int(np.count_nonzero(y != ref)), seed + 1
        inside += int(np.count_nonzero(np.abs(ref.astype(np.int64)) < 32767))
    assert total >= 100_000 and bad == 0, (total, bad)
    assert inside > total // 2, (inside, total)


def test_int16x8_conv_int64_is_not_the_int8_arithmetic() -> None:
    """§11.3.8: int16x8 CONV_2D with an int64 bias runs the reduced-multiplier requant
    (a `custom` block, 15-bit multiplier, half up); §8.1 (`tflite`, the int32 kernel's
    double rounding) disagrees with LiteRT on the same models."""
    from hwsim.arith import RequantConfig
    from hwsim.compiler.profiles import EngineProfile

    rng = np.random.default_rng(64)
    other = bad = 0
    for _ in range(4):
        model, xshape = _mac16_model(rng, "conv", True, "int64", batch=64)
        x = _codes16(rng, xshape)
        ref = litert_run(model, x)
        im = load_tflite(model)
        conv = next(n for n in im.qgraph.nodes if n.op == "conv")
        assert conv.requant["out"].config == RequantConfig(mode="custom", multiplier_bits=15,
                                                           rounding="half_up")
        (y,) = im.model_outputs(run_golden(im.qgraph, im.feeds(x)).codes).values()
        bad += int(np.count_nonzero(y != ref))
        im = load_tflite(model, profile=EngineProfile("tflite", RequantConfig(mode="tflite")))
        (y,) = im.model_outputs(run_golden(im.qgraph, im.feeds(x)).codes).values()
        other += int(np.count_nonzero(y != ref))
    assert bad == 0 and other > 0, (bad, other)


def _add16_model(rng: np.random.Generator, batch: int, pot: bool = False
                 ) -> tuple[bytes, tuple[int, ...]]:
    """int16 ADD of the input and a 1x1 int16x8 conv of it (another scale)."""
    b = TfliteBuilder()
    h, c = int(rng.integers(6, 12)), int(rng.integers(2, 6))
    shape = (batch, h, h, c)
    s_x = 2.0 ** -12 if pot else float(np.float32(rng.uniform(1e-4, 1e-3)))
    s_c = 2.0 ** -11 if pot else float(np.float32(rng.uniform(1e-4, 1e-3)))
    x = b.tensor("x", shape, "int16", scale=s_x, zero_point=0)
    ws = np.float32(rng.uniform(0.005, 0.02))
    wt = b.tensor("w", (c, 1, 1, c), "int8", scale=ws, zero_point=0,
                  data=rng.integers(-127, 128, (c, 1, 1, c)))
    bt = b.tensor("b", (c,), "int64", scale=np.float32(s_x) * ws, zero_point=0,
                  data=rng.integers(-300_000, 300_000, c))
    cv = b.tensor("c", shape, "int16", scale=s_c, zero_point=0)
    b.op("CONV_2D", [x, wt, bt], [cv], Padding="SAME", StrideW=1, StrideH=1,
         DilationWFactor=1, DilationHFactor=1)
    s_y = 2.0 ** -10 if pot else float(np.float32(rng.uniform(0.5, 3.0) * max(s_x, s_c)))
    y = b.tensor("y", shape, "int16", scale=s_y, zero_point=0)
    b.op("ADD", [x, cv], [y], FusedActivationFunction=_act(rng))
    return b.finish([x], [y]), shape


def test_int16_add_bit_exact_vs_litert() -> None:
    """int16 ADD with general scales (§11.3.8: §10.1 with `tflite` blocks and L = 15):
    ≥ 100,000 outputs, zero mismatches; with power-of-two scales and the default
    pot_scale_int16 LiteRT takes its fixed-point LSTM path, which the importer refuses."""
    rng = np.random.default_rng(65)
    total = bad = 0
    while total < 100_000:
        model, xshape = _add16_model(rng, 32)
        n, m = compare(model, _codes16(rng, xshape))
        total, bad = total + n, bad + m
    assert total >= 100_000 and bad == 0, (total, bad)
    model, _ = _add16_model(rng, 1, pot=True)
    with pytest.raises(ModelError, match=r"operator 1 \(ADD\): int16 ADD with power-of-two "
                                         r"scales and pot_scale_int16"):
        load_tflite(model)


def _int16_other_model(rng: np.random.Generator, kind: str, batch: int
                       ) -> tuple[bytes, tuple[int, ...]]:
    """int16 (zero point 0) MUL, AVERAGE_POOL_2D, MAX_POOL_2D, MEAN, and the code-moving
    RELU / PAD / CONCATENATION."""
    b = TfliteBuilder()
    h, c = int(rng.integers(6, 12)), int(rng.integers(2, 6))
    s_x = float(np.float32(rng.uniform(1e-4, 1e-3)))
    xshape = (batch, h, h, c)
    x = b.tensor("x", xshape, "int16", scale=s_x, zero_point=0)
    if kind in ("mul", "concat"):
        r = b.tensor("r", xshape, "int16", scale=s_x, zero_point=0)
        b.op("RELU", [x], [r])
        if kind == "mul":
            s_y = float(np.float32(rng.uniform(0.5e-4, 1e-3) * s_x * 32768))
            y = b.tensor("y", xshape, "int16", scale=s_y, zero_point=0)
            b.op("MUL", [x, r], [y], FusedActivationFunction=_act(rng))
        else:
            y = b.tensor("y", (batch, h, h, 2 * c), "int16", scale=s_x, zero_point=0)
            b.op("CONCATENATION", [x, r], [y], Axis=3)
    elif kind == "mean":
        keep = bool(rng.integers(0, 2))
        ax = b.tensor("axes", (2,), "int32", data=np.array([1, 2]))
        y = b.tensor("y", (batch, 1, 1, c) if keep else (batch, c), "int16",
                     scale=float(np.float32(s_x * rng.uniform(0.2, 2.0))), zero_point=0)
        b.op("MEAN", [x, ax], [y], KeepDims=keep)
    elif kind == "pad":
        pads = b.tensor("pads", (4, 2), "int32", data=np.array([[0, 0], [1, 2], [2, 1], [0, 0]]))
        y = b.tensor("y", (batch, h + 3, h + 3, c), "int16", scale=s_x, zero_point=0)
        b.op("PAD", [x, pads], [y])
    else:
        k, stride = int(rng.integers(2, 4)), int(rng.integers(1, 3))
        pad = str(rng.choice(["SAME", "VALID"]))
        oh = -(-h // stride) if pad == "SAME" else (h - k + stride) // stride
        y = b.tensor("y", (batch, oh, oh, c), "int16", scale=s_x, zero_point=0)
        b.op("AVERAGE_POOL_2D" if kind == "avgpool" else "MAX_POOL_2D", [x], [y],
             Padding=pad, StrideW=stride, StrideH=stride, FilterWidth=k, FilterHeight=k,
             FusedActivationFunction=_act(rng))
    return b.finish([x], [y]), xshape


@pytest.mark.parametrize("kind", ["mul", "avgpool", "maxpool", "mean", "pad", "concat"])
def test_int16_other_ops_bit_exact_vs_litert(kind: str) -> None:
    """int16 MUL (§11.3.6), AVERAGE_POOL_2D (§11.3.4), MAX_POOL_2D, MEAN (§11.3.5), PAD,
    CONCATENATION (+ RELU): the int8 arithmetic on int16 codes (§11.3.8); ≥ 100,000
    outputs each, zero mismatches."""
    rng = np.random.default_rng({"mul": 71, "avgpool": 72, "maxpool": 73, "mean": 74,
                                 "pad": 75, "concat": 76}[kind])
    total = bad = 0
    while total < 100_000:
        model, xshape = _int16_other_model(rng, kind, 2048 if kind == "mean" else 32)
        n, m = compare(model, _codes16(rng, xshape))
        total, bad = total + n, bad + m
    assert total >= 100_000 and bad == 0, (total, bad)


def test_int16x8_cycle_model_equals_golden() -> None:
    """The cycle model (fast and stepped, 16-bit activation port) runs imported int16x8
    graphs unchanged: custom (§11.3.8), tflite (§8.1) and float64 (§8.7) requant blocks and
    the L = 15 add give golden's codes."""
    from hwsim.sim.config import ArrayConfig
    from hwsim.sim.graph import simulate_qgraph

    rng = np.random.default_rng(81)
    cfg = ArrayConfig(rows=4, cols=4, dataflow="ws", act_bits=16)
    cases = [_mac16_model(rng, k, True, b, 2) for k, b in
             (("conv", "int64"), ("depthwise", "int64"), ("conv", "int32"), ("fc", "int64"))]
    cases.append(_add16_model(rng, 2))
    for model, xshape in cases:
        im = load_tflite(model)
        feeds = im.feeds(_codes16(rng, xshape))
        gold = run_golden(im.qgraph, feeds).codes
        for stepped in (False, True):
            sim = simulate_qgraph(im.qgraph, feeds, cfg, stepped=stepped)
            for name, val in gold.items():
                np.testing.assert_array_equal(sim.codes[name], val, err_msg=name)


def test_cli_verify_int16x8(tmp_path, capsys) -> None:
    """`hwsim verify` on an int16x8 model (int64 bias): int16 codes fed as codes and float
    inputs quantized to int16 both give litert_vs_golden and golden_vs_cycle (16-bit
    activation port by default) without mismatches."""
    import json

    from hwsim.cli import main

    rng = np.random.default_rng(82)
    model, xshape = _mac16_model(rng, "conv", True, "int64", 4)
    (tmp_path / "c16.tflite").write_bytes(model)
    np.save(tmp_path / "q.npy", _codes16(rng, (8,) + xshape[1:]))
    np.save(tmp_path / "f.npy", rng.normal(0, 3, (8,) + xshape[1:]).astype(np.float32))
    for name in ("q", "f"):
        assert main(["verify", str(tmp_path / "c16.tflite"), "--inputs",
                     str(tmp_path / f"{name}.npy"), "--json"]) == 0
        pairs = json.loads(capsys.readouterr().out)["pairs"]
        assert pairs["litert_vs_golden"]["mismatches"] == 0
        # one conv node: its output is the model output
        assert pairs["litert_vs_golden"]["total"] == pairs["golden_vs_cycle"]["total"] > 0
        assert pairs["golden_vs_cycle"]["mismatches"] == 0


def test_int16x8_refusals_name_the_operator() -> None:
    """Inputs LiteRT's 16x8 kernels reject or misread are refused with the op named:
    int16 zero points, an int32 bias without quantized_bias_type INT32, accumulators
    that can leave int32."""
    def conv(z: int = 0, bias: str = "int64", big: bool = False) -> bytes:
        b = TfliteBuilder()
        x = b.tensor("x", (1, 4, 4, 2), "int16", scale=1e-3, zero_point=z)
        w = b.tensor("w", (3, 1, 1, 2), "int8", scale=0.01, zero_point=0,
                     data=np.full((3, 1, 1, 2), 100))
        bt = b.tensor("b", (3,), bias, scale=1e-5, zero_point=0,
                      data=np.full(3, 2_145_000_000 if big else 5))
        y = b.tensor("y", (1, 4, 4, 3), "int16", scale=0.05, zero_point=0)
        b.op("CONV_2D", [x, w, bt], [y], Padding="SAME", StrideW=1, StrideH=1,
             DilationWFactor=1, DilationHFactor=1)
        return b.finish([x], [y])

    with pytest.raises(ModelError, match=r"operator 0 \(CONV_2D\): int16 activations with "
                                         r"zero points 3"):
        load_tflite(conv(z=3))
    with pytest.raises(ModelError, match=r"operator 0 \(CONV_2D\): .*quantized_bias_type = "
                                         r"INT32"):
        load_tflite(conv(bias="int32"))
    b = TfliteBuilder()
    x = b.tensor("x", (1, 4), "int16", scale=1e-3, zero_point=0)
    y = b.tensor("y", (1, 4), "int8", scale=0.1, zero_point=0)
    b.op("MUL", [x, x], [y])
    with pytest.raises(ModelError, match=r"operator 0 \(MUL\): int16 / int16 / int8 with "
                                         r"zero points \[0, 0, 0\]; LiteRT's int16"):
        load_tflite(b.finish([x], [y]))
    with pytest.raises(ModelError, match=r"operator 0 \(CONV_2D\): int16x8 accumulator "
                                         r"bound 2151553600 "):
        load_tflite(conv(big=True))


def test_unsupported_op_names_op_and_index() -> None:
    b = TfliteBuilder()
    x = b.tensor("x", (1, 4), "int8", scale=0.1, zero_point=0)
    y = b.tensor("y", (1, 4), "int8", scale=0.1, zero_point=0)
    b.op("RELU", [x], [y])
    z = b.tensor("z", (1, 4), "int8", scale=1 / 256, zero_point=-128)
    b.op("LOGISTIC", [y], [z])
    with pytest.raises(ModelError, match=r"^operator 1 \(LOGISTIC\): not supported by the "
                                         r"\.tflite importer; supported operators: .*RELU"):
        load_tflite(b.finish([x], [z]))


def test_cli_verify_tflite_json_pairs(tmp_path, capsys) -> None:
    """`hwsim verify MODEL.tflite --inputs X.npy --json`: pairs litert_vs_golden (float
    inputs quantized by the model's QUANTIZE), golden_vs_cycle; integer codes fed as codes
    to an int8-input model; exit 0."""
    import json

    from hwsim.cli import main

    rng = np.random.default_rng(31)
    path = tmp_path / "cnn.tflite"
    path.write_bytes(small_cnn(rng, 1))
    x = rng.normal(0, 1.0, (6, 8, 8, 2)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert main(["verify", str(path), "--inputs", str(tmp_path / "x.npy"), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["profile"]["name"] == "litert_ref" and rep["samples"] == 6
    p = rep["pairs"]["litert_vs_golden"]
    assert (p["total"], p["mismatches"], p["max_abs_lsb"]) == (60, 0, 0)
    assert rep["pairs"]["golden_vs_cycle"]["mismatches"] == 0
    assert rep["pairs"]["golden_vs_cycle"]["total"] > 60
    model, xshape = _mac_model(rng, "conv", per_channel=True, batch=4)
    (tmp_path / "conv.tflite").write_bytes(model)
    np.save(tmp_path / "q.npy", _codes(rng, (8,) + xshape[1:]))
    assert main(["verify", str(tmp_path / "conv.tflite"), "--inputs",
                 str(tmp_path / "q.npy")]) == 0
    out = capsys.readouterr().out
    assert "litert vs golden 0/" in out and "litert_vs_golden" in out


def test_digits_export_bit_exact_vs_litert(tmp_path, capsys) -> None:
    """`hwsim quantize digits --profile litert_ref --format tflite`: LiteRT's output equals
    hwsim golden on every test image (450), and the file imports back to the same codes;
    `hwsim verify` on it is clean."""
    import json

    from hwsim.cli import main
    from hwsim.compiler.qgraph import quantize_feeds
    from hwsim.compiler.quantize import QuantizeConfig, quantize_static
    from hwsim.data import demo_model_path, load_demo_data
    from hwsim.frontends.onnx import load_onnx
    from hwsim.frontends.tflite_export import to_tflite
    from hwsim.verify_tflite import litert_interpreter, run_litert

    g = load_onnx(str(demo_model_path()))
    xc, _ = load_demo_data("calib")
    qg = quantize_static(g, [{g.inputs[0]: xc}], QuantizeConfig(profile="litert_ref"))
    ops = [n.op for n in qg.nodes]
    assert "gemm" in ops and qg.node("fc").requant["out"].config.mode == "float64"
    model = to_tflite(qg)
    x, _ = load_demo_data("test")
    codes = quantize_feeds(qg, {g.inputs[0]: x})[g.inputs[0]]
    gold = run_golden(qg, {g.inputs[0]: codes}).codes[qg.outputs[0]]
    (ref,) = run_litert(litert_interpreter(model), codes.transpose(0, 2, 3, 1).astype(np.int8))
    assert ref.shape == gold.shape == (450, 10)
    np.testing.assert_array_equal(ref, gold)
    back = load_tflite(model)
    (again,) = back.model_outputs(run_golden(back.qgraph, back.feeds(
        codes.transpose(0, 2, 3, 1))).codes).values()
    np.testing.assert_array_equal(again, gold)
    # the command line: quantize to .tflite, then verify it
    out = tmp_path / "digits.tflite"
    assert main(["quantize", "digits", "--profile", "litert_ref", "--format", "tflite",
                 "--out", str(out)]) == 0
    assert out.read_bytes()[4:8] == b"TFL3"
    capsys.readouterr()
    assert main(["verify", str(out), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["pairs"]["litert_vs_golden"]["mismatches"] == 0
    assert rep["pairs"]["litert_vs_golden"]["total"] == 160  # 16 random inputs x 10


def test_export_refuses_other_arithmetic() -> None:
    """A graph compiled under `tflite` (gemm not §8.7, global average pool §10.2) is not
    LiteRT's: the exporter names the node and says how to compile it."""
    from hwsim.compiler.quantize import QuantizeConfig, quantize_static
    from hwsim.data import demo_model_path, load_demo_data
    from hwsim.frontends.onnx import load_onnx
    from hwsim.frontends.tflite_export import to_tflite

    g = load_onnx(str(demo_model_path()))
    xc, _ = load_demo_data("calib")
    qg = quantize_static(g, [{g.inputs[0]: xc}], QuantizeConfig(profile="tflite"))
    with pytest.raises(ModelError, match=r"node 'gap' \(global_avgpool\): no LiteRT "
                                         r"reference kernel .*--profile litert_ref"):
        to_tflite(qg)


def test_imported_model_golden_vectors_check(tmp_path) -> None:
    """Golden vectors of an imported .tflite model (conv, depthwise, FC in §8.7) written
    from the cycle model and re-checked by the vector checker."""
    from hwsim.sim.config import ArrayConfig
    from hwsim.sim.graph import simulate_qgraph
    from hwsim.vectors.check import check_vectors
    from hwsim.vectors.generate import vectors_from_simulation
    from hwsim.vectors.writer import write_vectors

    rng = np.random.default_rng(41)
    im = load_tflite(small_cnn(rng, 1))
    x = rng.normal(0, 1.0, (2, 8, 8, 2)).astype(np.float32)
    cfg = ArrayConfig(rows=4, cols=4, dataflow="ws")
    sim = simulate_qgraph(im.qgraph, im.feeds(x), cfg)
    lvs = vectors_from_simulation(im.qgraph, sim, cfg)
    assert len(lvs) == 3
    out = write_vectors(tmp_path / "vec", lvs, {"model": im.qgraph.name,
                                                "profile": im.qgraph.profile})
    assert check_vectors(out, regenerate=False) == []


def test_float64_mode_numpy_jit_and_rational() -> None:
    """§8.7: requantize (numpy) and requantize_scalar (Numba) equal an exact model: the
    product acc·eff rounded once to binary64 (RNE, float(Fraction)), then half away from
    zero; the stored (M, shift) is eff exactly; ties and int32 extremes included."""
    from fractions import Fraction

    from hwsim.arith import RequantConfig, effective_scale, make_requant_params, requantize
    from hwsim.arith.jit import requant_scalar_args, requantize_scalar

    rng = np.random.default_rng(51)
    for t in range(40):
        f32 = np.float32
        eff = (float(f32(rng.uniform(1e-3, 0.2))) * float(f32(rng.uniform(1e-3, 0.05)))
               / float(f32(rng.uniform(0.01, 1.0)))) if t % 4 else 2.0 ** -int(rng.integers(1, 9))
        p = make_requant_params(eff, RequantConfig(mode="float64"), int(rng.integers(-20, 20)),
                                act_min=-128, act_max=127)
        assert float(effective_scale(p)[0]) == eff
        acc = np.concatenate([rng.integers(-(1 << 31), 1 << 31, 40),
                              rng.integers(-4000, 4000, 200), [-(1 << 31), (1 << 31) - 1]])
        got = requantize(acc, p)
        args = requant_scalar_args(p)
        for a, g in zip(acc, got, strict=True):
            v = Fraction(float(Fraction(int(a)) * Fraction(eff)))
            r = int(abs(v) + Fraction(1, 2)) * (1 if v >= 0 else -1)
            want = min(max(r + p.zero_point, -128), 127)
            assert g == want, (eff, a)
            assert requantize_scalar(int(a), int(args[0][0]), int(args[1][0]), args[2][0],
                                     *args[3:]) == want
