"""The command line's checked argument types (pure code)."""

from __future__ import annotations

import argparse

import pytest

from farview.input.launch import lease_argument, parse_bitrate, seconds_argument


def test_a_lease_is_whole_minutes_from_1_to_1440() -> None:
    assert lease_argument("1") == 1 and lease_argument("1440") == 1440
    for bad, says in (("0", "1 to 1440 minutes, got 0"), ("1441", "got 1441"),
                      ("-5", "got -5"), ("1.5", "whole minutes, got '1.5'")):
        with pytest.raises(argparse.ArgumentTypeError, match=says):
            lease_argument(bad)


def test_seconds_are_finite_and_more_than_zero() -> None:
    assert seconds_argument("0.5") == 0.5
    for bad in ("0", "-1", "nan", "inf", "soon"):
        with pytest.raises(argparse.ArgumentTypeError):
            seconds_argument(bad)


def test_bit_rates_take_suffixes() -> None:
    assert parse_bitrate("3M") == 3_000_000 and parse_bitrate("500k") == 500_000
    with pytest.raises(ValueError, match="must look like"):
        parse_bitrate("20x")
