"""Post-training quantization: float IR -> integer graph (specs/compiler.md §3, §4).

``quantize_static(graph, calib, cfg)`` calibrates activation ranges over ``calib`` and
builds a :class:`~hwsim.compiler.qgraph.QGraph`: asymmetric per-tensor activations (``cfg.
act_dtype``), symmetric per-output-channel weights in ``cfg.weights``, int32 biases of scale
s_in·s_w(c) with the zero-point cross term folded in (§7), per-channel requant parameters of
``cfg.requant`` (§8) with fused ReLU / ReLU6 / Clip bounds, the integer add of §10.1,
average pooling of §10.2 and concat rescaling of §10.3.
``quantize_dynamic(graph, cfg)`` builds a dynamic graph (§4): weights as above, float
biases, activation qparams chosen per input at run time (:mod:`hwsim.compiler.dynamic`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from hwsim.arith import RequantConfig
from hwsim.compiler.calibrate import OBSERVERS, calibrate
from hwsim.compiler.fold import activation_range, plan_fusion
from hwsim.compiler.qgraph import (
    ACT_DTYPES,
    QGraph,
    QNode,
    TensorQ,
    verify_qgraph,
)
from hwsim.compiler.requant import (
    INT32_MAX,
    INT32_MIN,
    add_requant,
    mac_requant,
    rescale_requant,
)
from hwsim.errors import ConfigError, ModelError
from hwsim.ir.graph import Graph, Node
from hwsim.quant import PerAxis, QuantSpec, choose_qparams, fp8_decode, quantize
from hwsim.reference.golden_ops import add_left_shift

#: Weight choices of the command line and what they map to (specs/compiler.md §3.3).
WEIGHT_CHOICES = {"int8": "int8", "int4": "int4", "int4_block": "int4_block",
                  "fp8": "fp8_e4m3", "fp8_e4m3": "fp8_e4m3"}

#: fp8 e4m3 values are integer multiples of 2^-9 (smallest subnormal), |v·2^9| <= 229376.
FP8_E4M3_FRACTION_BITS = 9
#: Width in bits of the integer weights each format is carried as in the MAC (int4_block as
#: int8 codes q·2^(4-e); fp8 e4m3 as the signed integers v·2^9, |v·2^9| <= 229376 < 2^18).
WEIGHT_CARRIED_BITS = {"int8": 8, "int4": 4, "int4_block": 8, "fp8": 19, "fp8_e4m3": 19}
#: Width of the activation codes of each activation dtype.
ACT_BITS = {"int8": 8, "uint8": 8, "int16": 16, "uint16": 16}
#: int4 per-block: block scales are s_c·2^-e, e in [0, INT4_BLOCK_MAX_EXP] (specs §3.3).
INT4_BLOCK_MAX_EXP = 4


@dataclass(frozen=True)
class QuantizeConfig:
    """Choices of the quantizing compiler.

    ``weights``: "int8" (default), "int4", "int4_block", "fp8" (e4m3); ``block_size`` (the
    reduction-axis block of int4_block); ``act_dtype`` of activations (asymmetric, per
    tensor); ``observer`` name (minmax, moving_average, percentile, mse, entropy) with
    ``observer_kwargs``; ``requant`` the requantization datapath; ``acc_bits`` /
    ``acc_overflow`` the MAC accumulator (§7); ``profile`` an engine profile name
    (arithmetic §11; it fixes ``requant`` and how add and pooling lower; "" = the profile
    of ``requant``); ``narrow_range``: symmetric int8 / int4 weights use [−127, 127] /
    [−7, 7] (never the code qmin, as ONNX Runtime and TFLite quantize weights)."""

    weights: str = "int8"
    block_size: int = 16
    act_dtype: str = "int8"
    observer: str = "minmax"
    observer_kwargs: tuple[tuple[str, object], ...] = ()
    requant: RequantConfig = RequantConfig()
    acc_bits: int = 32
    acc_overflow: str = "wrap"
    profile: str = ""
    narrow_range: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.narrow_range, bool):
            raise ConfigError(f"narrow_range: expected a bool, got {self.narrow_range!r}")
        if self.narrow_range and WEIGHT_CHOICES.get(self.weights) not in ("int8", "int4"):
            raise ConfigError(f"narrow_range: defined for int8 / int4 weights only, not "
                              f"{self.weights!r}")
        if self.profile:
            from hwsim.compiler.profiles import get_profile

            prof = get_profile(self.profile)
            if self.requant not in (RequantConfig(), prof.requant):
                raise ConfigError(f"requant: profile {self.profile!r} fixes the requant "
                                  f"datapath ({prof.requant.mode!r}); give one or the other")
            object.__setattr__(self, "requant", prof.requant)
        if self.weights not in WEIGHT_CHOICES:
            raise ConfigError(f"weights: expected one of {sorted(WEIGHT_CHOICES)}, "
                              f"got {self.weights!r}")
        if not isinstance(self.block_size, int) or self.block_size < 1:
            raise ConfigError(f"block_size: expected an int >= 1, got {self.block_size!r}")
        if self.act_dtype not in ACT_DTYPES:
            raise ConfigError(f"act_dtype: expected one of {ACT_DTYPES}, got {self.act_dtype!r}")
        if self.observer not in OBSERVERS:
            raise ConfigError(f"observer: expected one of {OBSERVERS}, got {self.observer!r}")
        if not isinstance(self.requant, RequantConfig):
            raise ConfigError("requant: expected a hwsim.arith.RequantConfig")
        from hwsim.sim.config import check_acc_bits

        check_acc_bits(self.acc_bits, ACT_BITS.get(self.act_dtype, 8),
                       WEIGHT_CARRIED_BITS[self.weights],
                       f"acc_bits (for {self.act_dtype} activations and {self.weights} "
                       "weights)")


def quantize_weights(w: np.ndarray, fmt: str, block_size: int = 16,
                     narrow_range: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-output-channel weights (axis 0) -> (integer weights, scale float64[M]).

    real w ≈ scale[c]·q. int8 / int4: hwsim.quant symmetric PerAxis(0) (zero point 0).
    int4_block: channel scale s_c (int4 symmetric over the channel); each block of
    ``block_size`` consecutive reduction elements gets s_c·2^-e with the largest e in
    [0, 4] that still holds the block's max |w|; its int4 codes q are carried exactly as
    the int8 q·2^(4−e) with channel scale s_c·2^-4. fp8_e4m3: fp8 codes with scale s_c
    (PerAxis), carried exactly as the int32 integers v·2^9 (v the decoded fp8 value) with
    scale s_c·2^-9.
    """
    w = np.asarray(w, dtype=np.float32)
    m = w.shape[0]
    flat = w.reshape(m, -1)
    lo, hi = flat.min(axis=1), flat.max(axis=1)
    fmt = WEIGHT_CHOICES.get(fmt, fmt)
    if fmt in ("int8", "int4"):
        qp = choose_qparams(lo, hi, QuantSpec(fmt, symmetric=True, narrow_range=narrow_range,
                                              granularity=PerAxis(0)), ndim=w.ndim)
        return quantize(w, qp), qp.scale.astype(np.float64)
    if fmt == "fp8_e4m3":
        qp = choose_qparams(lo, hi, QuantSpec("fp8_e4m3", granularity=PerAxis(0)), ndim=w.ndim)
        vals = fp8_decode(quantize(w, qp), "e4m3").astype(np.float64)
        carried = np.ldexp(vals, FP8_E4M3_FRACTION_BITS)
        if not np.array_equal(carried, np.rint(carried)):
            raise ModelError("fp8 weights are not integer multiples of 2^-9")
        return carried.astype(np.int32), np.ldexp(qp.scale.astype(np.float64),
                                                  -FP8_E4M3_FRACTION_BITS)
    if fmt == "int4_block":
        qp = choose_qparams(lo, hi, QuantSpec("int4", symmetric=True, granularity=PerAxis(0)),
                            ndim=w.ndim)
        s_c = qp.scale.astype(np.float64)
        k = flat.shape[1]
        nblk = -(-k // block_size)
        padded = np.zeros((m, nblk * block_size), dtype=np.float64)
        padded[:, :k] = flat
        amax = np.abs(padded.reshape(m, nblk, block_size)).max(axis=2)
        # largest e in [0, 4] with amax <= 7.5 * s_c * 2^-e (the symmetric int4 range)
        e = np.zeros((m, nblk), dtype=np.int64)
        for cand in range(1, INT4_BLOCK_MAX_EXP + 1):
            fits = amax <= 7.5 * s_c[:, None] * 2.0 ** -cand
            e = np.where(fits, cand, e)
        e_el = np.repeat(e, block_size, axis=1)[:, :k]
        step = s_c[:, None] * np.ldexp(1.0, -e_el)
        q = np.clip(np.rint(flat / step), -8, 7).astype(np.int64)
        carried = q << (INT4_BLOCK_MAX_EXP - e_el)
        return (carried.reshape(w.shape).astype(np.int8),
                np.ldexp(s_c, -INT4_BLOCK_MAX_EXP))
    raise ConfigError(f"weights: unknown weight format {fmt!r}")


def _fold_bias(b: np.ndarray | None, w_q: np.ndarray, s_in: float, s_w: np.ndarray,
               z_in: int, acc_bits: int = 32) -> np.ndarray:
    """§7: bias_q(c) = round_half_even(b(c)/(s_in·s_w(c))) saturated to int32, minus
    z_in·Σ_k w(c, k); the result saturated to the signed ``acc_bits`` accumulator range
    (the register it initialises)."""
    m = w_q.shape[0]
    bq = np.zeros(m, dtype=np.int64) if b is None else np.clip(
        np.rint(np.asarray(b, dtype=np.float64) / (s_in * s_w)), INT32_MIN, INT32_MAX
    ).astype(np.int64)
    folded = bq - z_in * w_q.reshape(m, -1).astype(np.int64).sum(axis=1)
    lim = 1 << (acc_bits - 1)
    return np.clip(folded, -lim, lim - 1).astype(np.int32)


def _mac_weights(graph: Graph, node: Node) -> tuple[str, np.ndarray, np.ndarray | None, dict]:
    """(integer op, float weight [M, ...], float bias or None, attrs) of a conv/gemm/matmul."""
    init = graph.initializers
    if node.op == "conv2d":
        a = node.attrs
        attrs = {"strides": a["strides"], "pads": a["pads"], "dilations": a["dilations"],
                 "group": a["groups"]}
        b = init[node.inputs[2]] if len(node.inputs) == 3 else None
        return "conv", np.asarray(init[node.inputs[1]]), b, attrs
    if node.inputs[1] not in init:
        raise ModelError(f"node {node.name!r} ({node.op}): the weight operand must be a "
                         "constant to be quantized")
    w = np.asarray(init[node.inputs[1]])
    if w.ndim != 2 or graph.tensors[node.inputs[0]].rank != 2:
        raise ModelError(f"node {node.name!r} ({node.op}): only 2-D x @ W is supported")
    if not (node.op == "gemm" and node.attrs["trans_b"]):
        w = w.T
    b = None
    if len(node.inputs) == 3:
        b = np.asarray(init[node.inputs[2]])
        if b.size != w.shape[0]:
            raise ModelError(f"node {node.name!r} (gemm): bias must have one value per "
                             f"output ({w.shape[0]}), got shape {b.shape}")
        b = b.reshape(-1)
    return "gemm", w, b, {}


def _act_spec(cfg: QuantizeConfig) -> QuantSpec:
    return QuantSpec(dtype=cfg.act_dtype)


def _build(graph: Graph, cfg: QuantizeConfig,
           observed: Mapping[str, TensorQ] | None) -> QGraph:
    """Shared walk of static (``observed`` qparams) and dynamic (``observed is None``)."""
    dynamic = observed is None
    from hwsim.compiler.profiles import get_profile, profile_for_requant

    prof = get_profile(cfg.profile) if cfg.profile else profile_for_requant(cfg.requant)
    if dynamic and prof.is_ort:
        raise ConfigError(f"profile {prof.name!r}: dynamic quantization is not supported "
                          "(its add and pooling kernels need static qparams)")
    fused = plan_fusion(graph)
    absorbed = {act.name for act in fused.values()}
    wfmt = WEIGHT_CHOICES[cfg.weights]
    tensors: dict[str, TensorQ] = {}

    def observed_tq(name: str) -> TensorQ:
        if dynamic:
            return TensorQ(name, cfg.act_dtype)
        return observed[name]

    for name in graph.inputs:
        tensors[name] = observed_tq(name)
    nodes: list[QNode] = []
    for node in graph.nodes:
        if node.name in absorbed:
            continue
        act = fused.get(node.name)
        out = act.outputs[0] if act is not None else node.outputs[0]
        act_rng = activation_range(act) if act is not None else (-np.inf, np.inf)
        fused_name = act.op if act is not None else ""
        if act is not None and act.op == "clip" and act_rng == (0.0, 6.0):
            fused_name = "relu6"
        x = node.inputs[0]
        if x not in tensors:
            raise ModelError(f"node {node.name!r} ({node.op}): input {x!r} is not an "
                             "activation the integer graph knows (constant inputs are "
                             "supported only as conv/gemm weights)")
        tin = tensors[x]
        where = f"node {node.name!r} ({node.op})"
        if node.op in ("conv2d", "gemm", "matmul"):
            qop, w, b, attrs = _mac_weights(graph, node)
            w_q, s_w = quantize_weights(w, wfmt, cfg.block_size, cfg.narrow_range)
            attrs["act_range"] = act_rng
            tout = observed_tq(out)
            if dynamic:
                bias = (np.zeros(w.shape[0]) if b is None
                        else np.asarray(b, dtype=np.float64)).astype(np.float64)
                requant = {}
            else:
                bias = _fold_bias(b, w_q, tin.scale, s_w, tin.zero_point, cfg.acc_bits)
                requant = {"out": mac_requant(tin.scale, s_w, tout,
                                              _mac_config(prof, cfg, qop), act_rng)}
            depthwise = qop == "conv" and w_q.shape[1] == 1 and attrs["group"] == w_q.shape[0]
            if (prof.mac_u8s8 == "avx2_pair_saturation" and tin.dtype == "uint8"
                    and w_q.dtype == np.int8 and wfmt == "int8" and not depthwise):
                qop += "_u8s8"  # arithmetic §11.2.8
            nodes.append(QNode(node.name, qop, (x,), out, attrs,
                               {"weight": w_q, "bias": bias, "weight_scale": s_w},
                               requant, fused_name))
            tensors[out] = tout
        elif node.op == "add":
            y = node.inputs[1]
            if y not in tensors:
                raise ModelError(f"{where}: both inputs must be activations (constant "
                                 "addends are not supported)")
            tout = observed_tq(out)
            if prof.is_ort:  # arithmetic §11.2.1
                nodes.append(QNode(node.name, "qlinear_add", (x, y), out,
                                   {"act_range": act_rng}, {}, {}, fused_name))
                tensors[out] = tout
                continue
            req = {} if dynamic else add_requant(tin, tensors[y], tout, cfg.requant, act_rng)
            bits = max(int(t.dtype.removeprefix("u").removeprefix("int"))
                       for t in (tin, tensors[y]))
            nodes.append(QNode(node.name, "add", (x, y), out,
                               {"act_range": act_rng, "left_shift": add_left_shift(bits)}, {},
                               req, fused_name))
            tensors[out] = tout
        elif node.op == "concat":
            missing = [t for t in node.inputs if t not in tensors]
            if missing:
                raise ModelError(f"{where}: input {missing[0]!r} is not an activation")
            tout = observed_tq(out)
            if prof.is_ort:  # arithmetic §11.2.4
                nodes.append(QNode(node.name, "qlinear_concat", tuple(node.inputs), out,
                                   {"axis": node.attrs["axis"]}))
                tensors[out] = tout
                continue
            req = {} if dynamic else {f"in{i}": rescale_requant(tensors[t], tout, cfg.requant)
                                      for i, t in enumerate(node.inputs)}
            nodes.append(QNode(node.name, "concat", tuple(node.inputs), out,
                               {"axis": node.attrs["axis"]}, {}, req))
            tensors[out] = tout
        else:
            qop, attrs = _shared_op(graph, node)
            if prof.is_ort and qop in ("avgpool", "global_avgpool"):  # arithmetic §11.2
                qop = "qlinear_" + qop
            if prof.name == "litert_ref" and not dynamic and qop in ("avgpool",
                                                                      "global_avgpool"):
                nodes.append(_litert_pool(graph, node, qop, attrs, tin, out))  # §11.3.4-5
                tensors[out] = TensorQ(out, tin.dtype, tin.scale, tin.zero_point)
                continue
            nodes.append(QNode(node.name, qop, (x,), out, attrs))
            tensors[out] = TensorQ(out, tin.dtype, tin.scale, tin.zero_point)
    shapes = {t: tuple(graph.tensors[t].shape) for t in graph.inputs}
    g = QGraph(name=graph.name, inputs=tuple(graph.inputs), outputs=tuple(graph.outputs),
               tensors=tensors, nodes=tuple(nodes), requant_config=cfg.requant,
               acc_bits=cfg.acc_bits, acc_overflow=cfg.acc_overflow, weight_format=wfmt,
               dynamic=dynamic, input_shapes=shapes, profile=prof.name)
    verify_qgraph(g)
    return g


def _mac_config(prof, cfg: QuantizeConfig, qop: str) -> RequantConfig:  # noqa: ANN001
    """The §8 datapath of a conv / gemm: the profile's per-op choice (``litert_ref``: gemm
    §8.7) when the profile was named, else ``cfg.requant``."""
    return prof.mac_requant(qop) if cfg.profile else cfg.requant


def _litert_pool(graph: Graph, node: Node, qop: str, attrs: dict, tin: TensorQ,
                 out: str) -> QNode:
    """``litert_ref`` pooling (arithmetic §11.3): average pooling as LiteRT's
    AVERAGE_POOL_2D (padding excluded from the count), global average pooling as MEAN (a
    depthwise conv of ones with LiteRT's mean multiplier, §11.3.5)."""
    from hwsim.frontends.tflite import litert_mean_requant

    if qop == "avgpool":
        if attrs["count_include_pad"] and any(attrs["pads"]):
            raise ModelError(f"node {node.name!r} (avgpool2d): count_include_pad = 1 with "
                             "padding has no LiteRT kernel (AVERAGE_POOL_2D excludes padding)")
        return QNode(node.name, "litert_avgpool", (node.inputs[0],), out,
                     {**attrs, "act_range": (-np.inf, np.inf)})
    n, c, h, w = graph.tensors[node.inputs[0]].shape
    return QNode(node.name, "conv", (node.inputs[0],), out,
                 {"strides": (1, 1), "pads": (0, 0, 0, 0), "dilations": (1, 1), "group": c,
                  "act_range": (-np.inf, np.inf), "litert": "mean"},
                 {"weight": np.ones((c, 1, h, w), dtype=np.int8),
                  "bias": np.full(c, -tin.zero_point * h * w, dtype=np.int32),
                  "weight_scale": np.full(c, 1.0 / (h * w))},
                 {"out": litert_mean_requant(tin, TensorQ(out, tin.dtype, tin.scale,
                                                          tin.zero_point), h * w, c)})


def _shared_op(graph: Graph, node: Node) -> tuple[str, dict]:
    """Integer op and attrs of an op whose output shares its input's qparams."""
    a = node.attrs
    if node.op in ("relu", "clip"):
        return "clamp", {"act_range": activation_range(node)}
    if node.op == "maxpool2d":
        return "maxpool", {"kernel_shape": a["kernel"], "strides": a["strides"],
                           "pads": a["pads"], "dilations": a["dilations"]}
    if node.op == "avgpool2d":
        return "avgpool", {"kernel_shape": a["kernel"], "strides": a["strides"],
                           "pads": a["pads"], "count_include_pad": a["count_include_pad"]}
    if node.op == "global_avgpool":
        return "global_avgpool", {}
    if node.op == "flatten":
        return "flatten", {"axis": a["axis"]}
    if node.op == "reshape":
        src = graph.tensors[node.inputs[0]].shape
        dst = graph.tensors[node.outputs[0]].shape
        if src[0] != dst[0]:
            raise ModelError(f"node {node.name!r} (reshape): only reshapes that keep the "
                             f"batch dimension are supported, got {src} -> {dst}")
        return "reshape", {"shape": tuple(int(d) for d in dst[1:])}
    if node.op == "pad":
        return "pad", {"pads": a["pads"], "value": float(a["value"])}
    raise ModelError(f"node {node.name!r}: op {node.op!r} is not supported by the "
                     "quantizing compiler")


def activation_tensors(graph: Graph) -> list[str]:
    """Tensors whose qparams come from calibration: graph inputs and the outputs of
    conv / gemm / matmul / add / concat (after their fused activation)."""
    fused = plan_fusion(graph)
    names = list(graph.inputs)
    for node in graph.nodes:
        if node.op in ("conv2d", "gemm", "matmul", "add", "concat"):
            act = fused.get(node.name)
            names.append(act.outputs[0] if act is not None else node.outputs[0])
    return names


def quantize_static(graph: Graph, calib: Iterable[Mapping[str, np.ndarray]],
                    cfg: QuantizeConfig = QuantizeConfig(),
                    qparams: Mapping[str, TensorQ] | None = None) -> QGraph:
    """Static post-training quantization of ``graph`` calibrated on ``calib`` (an iterable
    of feed dicts, each one batch); see the module docstring.

    ``qparams`` gives external activation qparams (a model's own, or
    :func:`load_qparams_json`) for some or all of :func:`activation_tensors`; only the
    others are calibrated (``calib`` is not read when every tensor is given; compiler
    §3.4). A name that is not such a tensor is a ConfigError naming it."""
    names = activation_tensors(graph)
    given = dict(qparams or {})
    unknown = [t for t in given if t not in names]
    if unknown:
        raise ConfigError(f"qparams: {unknown[0]!r} is not a calibrated activation tensor "
                          f"of graph {graph.name!r}; expected some of {names}")
    todo = [t for t in names if t not in given]
    qps = calibrate(graph, calib, todo, cfg.observer, _act_spec(cfg),
                    **dict(cfg.observer_kwargs)) if todo else {}
    observed = {n: TensorQ(n, cfg.act_dtype, float(np.asarray(qp.scale)),
                           int(np.asarray(qp.zero_point))) for n, qp in qps.items()}
    observed.update({t: TensorQ(t, tq.dtype, tq.scale, tq.zero_point)
                     for t, tq in given.items()})
    return _build(graph, cfg, observed)


def load_qparams_json(path: str) -> dict[str, TensorQ]:
    """External activation qparams from a JSON file (compiler §3.4):
    ``{"tensors": {"name": {"scale": s, "zero_point": z, "dtype": "uint8"}, ...}}``
    (``dtype`` defaults to int8). Errors name the file and the tensor."""
    import json

    from hwsim.inputs import read_text

    try:
        doc = json.loads(read_text(path, "--qparams"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--qparams {path}: not valid JSON ({exc.msg}, line {exc.lineno})"
                          ) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("tensors"), dict):
        raise ConfigError(f"--qparams {path}: expected an object with a 'tensors' object")
    out = {}
    for name, t in doc["tensors"].items():
        if not isinstance(t, dict) or "scale" not in t or "zero_point" not in t:
            raise ConfigError(f"--qparams {path}: tensor {name!r}: expected scale and "
                              "zero_point")
        try:
            out[name] = TensorQ(name, str(t.get("dtype", "int8")), float(t["scale"]),
                                int(t["zero_point"]))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"--qparams {path}: tensor {name!r}: {exc}") from None
        except ConfigError as exc:
            raise ConfigError(f"--qparams {path}: {exc}") from None
    return out


def quantize_dynamic(graph: Graph, cfg: QuantizeConfig = QuantizeConfig()) -> QGraph:
    """Dynamic post-training quantization (specs/compiler.md §4): no calibration."""
    return _build(graph, cfg, None)
