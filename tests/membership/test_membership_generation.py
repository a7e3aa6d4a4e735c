"""Generations grow across restarts even when the wall clock goes backwards."""

from __future__ import annotations

from havm.clock import ManualClock
from havm.membership.generation import next_generation


def test_generation_grows_even_if_the_clock_goes_back(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "generation")
    first = next_generation(path, ManualClock(wall_offset=1_700_000_000.0))
    assert first == int((1000.0 + 1_700_000_000.0) * 1e9)
    earlier_clock = ManualClock(wall_offset=1_600_000_000.0)  # RTC reset at boot
    second = next_generation(path, earlier_clock)
    assert second == first + 1
    later = next_generation(path, ManualClock(wall_offset=1_800_000_000.0))
    assert later > second


def test_corrupt_file_falls_back_to_the_wall_clock(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "generation"
    path.write_text("garbage")
    assert next_generation(str(path), ManualClock()) == int((1000.0 + 1_700_000_000.0) * 1e9)
