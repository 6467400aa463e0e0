"""Small values the limits are built from: rate windows, days, and operator sizes."""

from __future__ import annotations

import argparse

import pytest

from agentfiles.data import rates
from agentfiles.data.usage_rows import day_of
from agentfiles_cli.admin import quota_value


@pytest.mark.parametrize(
    ("offset_ms", "seconds"),
    [(0, 60), (1, 60), (999, 60), (1000, 59), (59_000, 1), (59_001, 1), (59_999, 1)],
)
def test_retry_after_is_the_whole_seconds_left_in_the_window_and_never_zero(offset_ms: int, seconds: int):
    # Given a moment `offset_ms` into a window / When asked how long to wait
    start = 1_700_000_040_000 - 1_700_000_040_000 % rates.WINDOW_MS
    # Then it is the seconds to the next window, rounded up, at least 1
    assert rates.seconds_left(start + offset_ms) == seconds


def test_a_window_is_one_minute_and_its_counter_expires_after_it():
    # Given a moment / When its counter item is built
    update = rates.take("alice", 120_500, limit=3)
    # Then it counts in the second window, expires a minute after it, and holds below the limit
    assert update.key.sk == "RATE#2"
    assert update.set["expiresAt"] == 240
    assert update.when is not None and update.when.values == {"limit": 3}


def test_a_day_is_the_utc_date_of_the_moment():
    assert day_of(0) == "1970-01-01"
    assert day_of(86_400_000 - 1) == "1970-01-01"
    assert day_of(86_400_000) == "1970-01-02"


@pytest.mark.parametrize(
    ("text", "value"),
    [("1000", 1000), ("1KiB", 1024), ("500MiB", 500 * 1024**2), ("5G", 5 * 1024**3), ("2 gib", 2 * 1024**3)],
)
def test_an_operator_gives_sizes_in_bytes_or_binary_units(text: str, value: int):
    assert quota_value(text) == value


def test_default_clears_an_override_and_anything_else_is_refused():
    assert quota_value("default") == "default"
    with pytest.raises(argparse.ArgumentTypeError):
        quota_value("-5")
    with pytest.raises(argparse.ArgumentTypeError):
        quota_value("lots")
