"""Engine profiles: named, frozen tables from op type to arithmetic (specs/arithmetic.md §11).

A profile says, for every integer-graph op type, which arithmetic the engine being modelled
uses: the requantization datapath of conv / gemm (a :class:`hwsim.arith.RequantConfig`,
§8), and how add, average pooling, global average pooling, concat and the input
quantization round. hwsim's own single-mode configurations are profiles whose non-MAC ops
are the §10 integer kernels; ``ort_cpu`` reproduces ONNX Runtime's CPU kernels (MLAS and
the com.microsoft contrib ops, x86-64 with AVX2), whose non-MAC ops are the engine kernels
of :mod:`hwsim.reference.engine_ops` (§11.2).

The compiler and the quantized-ONNX importer ask :meth:`EngineProfile.lowering` which
integer op to emit for an op; executors never look at profiles, they run the op types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from hwsim.arith import RequantConfig
from hwsim.errors import ConfigError

#: Arithmetic names of the table (specs/arithmetic.md §11.1).
ARITHMETIC: Mapping[str, str] = MappingProxyType({
    "hwsim_add": "§10.1: three requant blocks of the profile's mode, left shift L",
    "hwsim_avgpool": "§10.2: z + round_half_away(Σ(q − z) / N), shared qparams",
    "hwsim_concat": "§10.3: each input rescaled by a requant block of the profile's mode",
    "hwsim_quantize": "§3: hwsim.quant.quantize of the float input (float64 division)",
    "ort_qlinear_add": "§11.2.1: MLAS QLinearAdd, AVX2 kernel (two float32 FMAs, RNE)",
    "ort_qlinear_add_raw": "§11.2.1: MLAS QLinearAdd portable helper (16-bit types)",
    "ort_qlinear_avgpool": "§11.2.3: QLinearAveragePool, float32 sum, divide, requantize",
    "ort_qlinear_global_avgpool": "§11.2.2: Σq − z·N in int32, float32 requant, RNE",
    "ort_qlinear_concat": "§11.2.4: QLinearConcat, copy or ORT lookup-table requantization",
    "ort_quantize_linear": "§11.2.5: MLAS QuantizeLinear: float32 x / s, clamp, RNE, + z",
    "ort_qlinear_leaky_relu": "§11.2.6: QLinearLeakyRelu lookup table",
    "ort_qlinear_sigmoid": "§11.2.6: QLinearSigmoid lookup table of MLAS's FMA3 logistic",
    "ort_qlinear_mul": "§11.2.7: MLAS QLinearMul, exact product, float32 scale, RNE",
    "litert_avgpool": "§11.3.4: round_half_away(Σq / count) on raw codes, padding excluded",
    "litert_mean": "§11.3.5: a depthwise conv of ones, TFLite's mean multiplier (M·2^s)/N",
    "litert_mul": "§11.3.6: (q1 − z1)(q2 − z2), MultiplyByQuantizedMultiplier, f32 scale",
    "litert_quantize": "§11.3.7: AffineQuantize: round_half_away(f32(x / s)) + z, clamp",
    "unsupported": "no integer kernel in this profile: import refuses the node",
    "exact": "§7: exact accumulation",
    "avx2_pair_saturation": "§11.2.8: uint8 x int8 products summed in pairs, saturated to "
                            "int16 (vpmaddubsw), K order of ORT's im2col",
})

#: Op types of the table, in the order reports list them.
TABLE_OPS = ("conv", "gemm", "add", "avgpool", "global_avgpool", "concat", "input", "mul",
             "leaky_relu", "sigmoid", "mac_u8s8")


@dataclass(frozen=True)
class EngineProfile:
    """One engine's arithmetic, op type by op type (§11.1).

    ``requant``: the §8 datapath of conv / gemm outputs (every requant block of the hwsim
    kernels uses it too); ``add``, ``avgpool``, ``global_avgpool``, ``concat``,
    ``input``: names from :data:`ARITHMETIC`; ``gemm_requant``: the §8 datapath of gemm
    outputs when it differs from ``requant`` (``litert_ref``: §8.7); ``saturation``:
    output codes saturate to the format (every profile; wrap exists only inside a
    ``custom`` RequantConfig); ``sources``: where the arithmetic was read."""

    name: str
    requant: RequantConfig
    add: str = "hwsim_add"
    avgpool: str = "hwsim_avgpool"
    global_avgpool: str = "hwsim_avgpool"
    concat: str = "hwsim_concat"
    input: str = "hwsim_quantize"
    mul: str = "unsupported"
    leaky_relu: str = "unsupported"
    sigmoid: str = "unsupported"
    mac_u8s8: str = "exact"
    gemm_requant: RequantConfig | None = None
    saturation: str = "saturate"
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.requant, RequantConfig):
            raise ConfigError(f"profile {self.name!r}: requant must be a RequantConfig")
        if self.gemm_requant is not None and not isinstance(self.gemm_requant, RequantConfig):
            raise ConfigError(f"profile {self.name!r}: gemm_requant must be a RequantConfig "
                              "or None")
        for op in TABLE_OPS[2:]:
            v = getattr(self, op)
            if v not in ARITHMETIC:
                raise ConfigError(f"profile {self.name!r}: {op}: unknown arithmetic {v!r}; "
                                  f"expected one of {sorted(ARITHMETIC)}")
        if self.saturation != "saturate":
            raise ConfigError(f"profile {self.name!r}: saturation: expected 'saturate', "
                              f"got {self.saturation!r}")

    @property
    def is_ort(self) -> bool:
        """True when the non-MAC ops run ONNX Runtime's kernels (engine ops)."""
        return self.add.startswith("ort_")

    def mac_requant(self, op: str) -> RequantConfig:
        """The §8 datapath of a ``conv`` or ``gemm`` output under this profile."""
        if op.startswith("gemm") and self.gemm_requant is not None:
            return self.gemm_requant
        return self.requant

    def table(self) -> dict[str, str]:
        """{op type: arithmetic} as recorded in reports and vector manifests."""
        def mac(cfg: RequantConfig) -> str:
            text = f"§8 requant mode {cfg.mode!r}"
            if cfg.mode in ("dyadic", "custom"):
                text += f" ({cfg.multiplier_bits}-bit multiplier, {cfg.rounding})"
            return text

        return {"conv": mac(self.requant), "gemm": mac(self.mac_requant("gemm")),
                "add": self.add, "avgpool": self.avgpool,
                "global_avgpool": self.global_avgpool, "concat": self.concat,
                "input": self.input, "mul": self.mul, "leaky_relu": self.leaky_relu,
                "sigmoid": self.sigmoid, "mac_u8s8": self.mac_u8s8,
                "saturation": self.saturation}

    def record(self) -> dict[str, object]:
        """JSON-ready description: name, table, sources."""
        return {"name": self.name, "ops": self.table(), "sources": list(self.sources)}


_ORT_SOURCES = (
    "onnxruntime/core/mlas/lib/quantize.cpp (MlasRequantizeOutput, MlasQuantizeLinear)",
    "onnxruntime/core/mlas/lib/qladd.cpp, intrinsics/avx2/qladd_avx2.cpp (QLinearAdd)",
    "onnxruntime/core/mlas/lib/qlgavgpool.cpp (QLinearGlobalAveragePool)",
    "onnxruntime/core/mlas/lib/qlmul.cpp (QLinearMul)",
    "onnxruntime/contrib_ops/cpu/quantization/qlinear_pool.cc (QLinearAveragePool)",
    "onnxruntime/contrib_ops/cpu/quantization/qlinear_concat.cc (QLinearConcat)",
    "onnxruntime/contrib_ops/cpu/quantization/qlinear_lookup_table.cc, "
    "qlinear_activations.cc (lookup tables, QLinearLeakyRelu, QLinearSigmoid)",
    "onnxruntime/core/mlas/lib/logistic.cpp, x86_64/LogisticKernelFma3.S (logistic)",
    "onnxruntime/contrib_ops/cpu/quantization/qlinear_binary_op.cc",
    "onnxruntime/contrib_ops/cpu/quantization/qlinear_global_average_pool.cc",
)


_LITERT_SOURCES = (
    "LiteRT tflite/kernels/register_ref.cc (BuiltinRefOpResolver: the *_REF registrations)",
    "tflite/kernels/internal/common.cc (MultiplyByQuantizedMultiplier, double rounding "
    "without TFLITE_SINGLE_ROUNDING)",
    "tflite/kernels/internal/reference/integer_ops/conv.h, depthwise_conv.h",
    "tflite/kernels/fully_connected.cc (FullyConnectedInt8 / FullyConnectedPerChannelInt8, "
    "kReference), tflite/kernels/internal/reference/integer_ops/fully_connected.h "
    "(float-scale overloads: round(double(acc) * effective_output_scale))",
    "tflite/kernels/add.cc, internal/reference/integer_ops/add.h (left shift 20)",
    "tflite/kernels/mul.cc, internal/reference/integer_ops/mul.h",
    "tflite/kernels/internal/reference/integer_ops/pooling.h (AveragePool, MaxPool)",
    "tflite/kernels/reduce.cc (PrepareMeanOrSum, EvalQuantizedMean), "
    "internal/reference/reduce.h (QuantizedMeanOrSum)",
    "tflite/kernels/internal/reference/quantize.h (AffineQuantize), kernel_util.cc "
    "(CalculateActivationRangeQuantized)",
)


def _mode_profile(mode: str) -> EngineProfile:
    return EngineProfile(mode, RequantConfig(mode=mode),
                         sources=("specs/arithmetic.md §8, §10",))


#: The named profiles (§11.1). ``custom`` is built from a user RequantConfig by
#: :func:`profile_for_requant`.
PROFILES: Mapping[str, EngineProfile] = MappingProxyType({
    **{m: _mode_profile(m) for m in ("tflite", "tflite_single", "float32", "dyadic")},
    "litert_ref": EngineProfile(
        "litert_ref", RequantConfig(mode="tflite"), gemm_requant=RequantConfig(mode="float64"),
        avgpool="litert_avgpool", global_avgpool="litert_mean", mul="litert_mul",
        input="litert_quantize", sources=_LITERT_SOURCES),
    "ort_cpu": EngineProfile(
        "ort_cpu", RequantConfig(mode="float32"), add="ort_qlinear_add",
        avgpool="ort_qlinear_avgpool", global_avgpool="ort_qlinear_global_avgpool",
        concat="ort_qlinear_concat", input="ort_quantize_linear", mul="ort_qlinear_mul",
        leaky_relu="ort_qlinear_leaky_relu", sigmoid="ort_qlinear_sigmoid",
        sources=_ORT_SOURCES),
    "ort_cpu_avx2": EngineProfile(
        "ort_cpu_avx2", RequantConfig(mode="float32"), add="ort_qlinear_add",
        avgpool="ort_qlinear_avgpool", global_avgpool="ort_qlinear_global_avgpool",
        concat="ort_qlinear_concat", input="ort_quantize_linear", mul="ort_qlinear_mul",
        leaky_relu="ort_qlinear_leaky_relu", sigmoid="ort_qlinear_sigmoid",
        mac_u8s8="avx2_pair_saturation",
        sources=_ORT_SOURCES + (
            "onnxruntime/core/mlas/lib/x86_64/QgemmU8S8KernelAvx2.S (vpmaddubsw, vpmaddwd)",)),
})


def host_ort_profile() -> str:
    """The ort profile of this machine's ONNX Runtime CPU kernels (§11.2.8):
    ``ort_cpu_avx2`` on x86-64 with AVX2 but no VNNI (the u8s8 kernels saturate pairs of
    products), else ``ort_cpu``. Read from /proc/cpuinfo (Linux); elsewhere ``ort_cpu``."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = next((ln.split(":", 1)[1].split() for ln in f
                          if ln.startswith("flags")), [])
    except OSError:
        return "ort_cpu"
    vnni = {"avx512_vnni", "avx_vnni", "amx_int8"} & set(flags)
    return "ort_cpu_avx2" if "avx2" in flags and not vnni else "ort_cpu"


def get_profile(name: str) -> EngineProfile:
    """The profile called ``name`` (ConfigError listing the names otherwise)."""
    if name not in PROFILES:
        raise ConfigError(f"profile: unknown engine profile {name!r}; expected one of "
                          f"{', '.join(PROFILES)}")
    return PROFILES[name]


def profile_for_requant(config: RequantConfig) -> EngineProfile:
    """The hwsim profile of a single requant configuration: the named profile of its mode
    when ``config`` is that profile's default, else a ``custom`` profile around it."""
    named = PROFILES.get(config.mode)
    if named is not None and named.requant == config and not named.is_ort:
        return named
    return EngineProfile("custom" if config.mode == "custom" else f"{config.mode}*",
                         config, sources=("specs/arithmetic.md §8, §10",))
