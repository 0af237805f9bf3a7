"""The memory model's per-shape cache (:func:`hwsim.sim.memory.gemm_memory`,
cycle_model.md §C6): a cached result equals the one computed afresh
(:func:`hwsim.sim.memory.compute_gemm_memory`) for every mapping setting, dataflow and
shape, whichever layer asked first; per-layer pins and errors are not shared."""

from __future__ import annotations

import itertools

import pytest

from hwsim.errors import HwsimError
from hwsim.sim import memory
from hwsim.sim.config import ArrayConfig
from hwsim.sim.dataflows import GemmShape, get_dataflow
from hwsim.sim.mapping import Mapping
from hwsim.sim.memory import compute_gemm_memory, gemm_memory

SHAPES = [GemmShape(4, 6, 4), GemmShape(37, 19, 11), GemmShape(1, 300, 2),
          GemmShape(500, 9, 70)]
SETTINGS = ["auto", "fixed", Mapping("nkm", 7, 2, 2, frozenset({"A"})),
            Mapping("mkn", 2, 4, 2)]


def _cfg(flow: str, setting, **kw) -> ArrayConfig:
    return ArrayConfig(rows=2, cols=2, dataflow=flow, dram_bytes_per_cycle=4.0,
                       input_sram_bytes=256, weight_sram_bytes=256, output_sram_bytes=512,
                       mapping=setting, **kw)


@pytest.mark.parametrize("flow", ["ws", "os", "is"])
def test_cached_memory_equals_fresh(flow) -> None:
    memory._MEMORY_CACHE.clear()
    df = get_dataflow(flow)
    checked = 0
    for shape, setting, out_bits in itertools.product(SHAPES, SETTINGS, (8, 32)):
        cfg = _cfg(flow, setting)
        unique = shape.m * shape.k
        try:
            fresh = compute_gemm_memory(df, shape, cfg, unique, out_bits, layer="a")
        except HwsimError as exc:  # an illegal pin: raised on every call, never cached
            for _ in range(2):
                with pytest.raises(HwsimError) as info:
                    gemm_memory(df, shape, cfg, unique, out_bits, layer="a")
                assert str(info.value) == str(exc)
            continue
        first = gemm_memory(df, shape, cfg, unique, out_bits, layer="a")
        again = gemm_memory(df, shape, cfg, unique, out_bits, layer="b")  # a cache hit
        assert first == fresh and again == fresh
        checked += 1
    assert checked >= len(SHAPES) * 2 * 2  # auto and fixed always apply


def test_per_layer_pin_is_not_shared() -> None:
    """Two layers of one shape, one pinned: each gets its own setting's model, in both
    call orders, and a pin that is illegal for the shape raises naming its layer."""
    shape = GemmShape(4, 6, 4)
    pin = Mapping("nkm", 7, 2, 2, frozenset({"A"}))
    cfg = _cfg("ws", "auto", layer_mappings={"conv": pin})
    for order in (("conv", "other"), ("other", "conv")):
        memory._MEMORY_CACHE.clear()
        got = {name: gemm_memory(get_dataflow("ws"), shape, cfg, 24, 8, layer=name)
               for name in order}
        assert got["conv"].mapping == "nkm:4x2x2+A"
        assert got["other"] == compute_gemm_memory(get_dataflow("ws"), shape, cfg, 24, 8,
                                                   layer="other")
        assert got["other"].mapping != got["conv"].mapping
    bad = _cfg("ws", "auto", layer_mappings={"conv": Mapping("mkn", 2, 3, 2)})
    gemm_memory(get_dataflow("ws"), shape, bad, 24, 8, layer="other")
    with pytest.raises(HwsimError, match=r"layer 'conv': mapping mkn:2x3x2: tk = 3"):
        gemm_memory(get_dataflow("ws"), shape, bad, 24, 8, layer="conv")


def test_cache_is_bounded(monkeypatch) -> None:
    memory._MEMORY_CACHE.clear()
    monkeypatch.setattr(memory, "MEMORY_CACHE_SIZE", 3)
    cfg = _cfg("ws", "fixed")
    for m in range(1, 8):
        shape = GemmShape(m, 6, 4)
        assert gemm_memory(get_dataflow("ws"), shape, cfg, m * 6, 8) == \
            compute_gemm_memory(get_dataflow("ws"), shape, cfg, m * 6, 8)
        assert len(memory._MEMORY_CACHE) <= 3
