"""hwsim.limits (the memory budget of issue 9) and the sweep time estimate."""

from __future__ import annotations

import pytest

from hwsim.errors import HwsimError, ResourceError
from hwsim.limits import (
    check_memory,
    default_max_memory,
    format_size,
    max_memory,
    memory_limit,
    parse_size,
    physical_memory,
)


@pytest.mark.parametrize("text,want", [
    ("1", 1), ("2000000", 2_000_000), ("512M", 512 << 20), ("4G", 4 << 30),
    ("1.5GiB", 3 << 29), ("2 GB", 2_000_000_000), ("64k", 64 << 10), ("1T", 1 << 40),
    ("10MiB", 10 << 20), ("3kB", 3000)])
def test_parse_size(text: str, want: int) -> None:
    assert parse_size(text) == want


@pytest.mark.parametrize("text", ["", "lots", "-1G", "0", "0.5", "1e9", "4 X", "G", "1.2.3M"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(HwsimError, match="expected a size"):
        parse_size(text)


def test_format_size() -> None:
    assert format_size(512) == "512 B"
    assert format_size(1536) == "1.5 KiB"
    assert format_size(119.2 * 2 ** 30) == "119.2 GiB"


def test_default_is_half_the_physical_memory_and_scoped_limits_restore() -> None:
    assert default_max_memory() == physical_memory() // 2
    before = max_memory()
    with memory_limit(1000):
        assert max_memory() == 1000
        with memory_limit(None):
            assert max_memory() == default_max_memory()
        assert max_memory() == 1000
    assert max_memory() == before


def test_check_memory_names_what_and_how_to_raise_it() -> None:
    with memory_limit(1 << 20):
        check_memory(1 << 20, "exactly the limit")  # at the limit: allowed
        with pytest.raises(ResourceError) as info:
            check_memory(3 << 20, "tensor 'x' of model.onnx")
    msg = str(info.value)
    assert msg.startswith("tensor 'x' of model.onnx needs about 3.0 MiB, more than the memory "
                          "limit of 1.0 MiB")
    assert "--max-memory 3.8M" in msg
    assert parse_size("3.8M") > 3 << 20  # the suggested value would pass


def test_sweep_estimate_scales_with_points_macs_and_workers() -> None:
    from hwsim.data import demo_model_path
    from hwsim.sweep import (
        POINT_SECONDS_FIXED,
        POINT_SECONDS_PER_MAC,
        estimate_seconds,
        graph_macs,
    )
    from hwsim.verify import load_model

    g = load_model(str(demo_model_path()))
    assert graph_macs(g) == 31_904  # the demo CNN's MACs per inference (README)
    one = POINT_SECONDS_FIXED + POINT_SECONDS_PER_MAC * 31_904
    assert estimate_seconds(36, 31_904, 1) == pytest.approx(36 * one)
    assert estimate_seconds(36, 31_904, 4) == pytest.approx(9 * one)
