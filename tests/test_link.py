"""The link rate a user asks for, as tc reads it."""

from __future__ import annotations

import pytest

from bench.errors import UsageError
from bench.servers.link import LinkRate


@pytest.mark.parametrize(("text", "bits"), [
    ("1Gbit", 10**9), ("100Mbit", 10**8), ("2.5gbit", 25 * 10**8), ("500kbit", 500_000),
    ("125MBps", 10**9),  # tc's "bps" is bytes per second
])
def test_rates_parse_in_tcs_decimal_units(text: str, bits: int) -> None:
    rate = LinkRate.parse(text)
    assert rate.bits_per_s == bits
    assert LinkRate.parse(str(rate)) == rate  # what run.json records reads back the same


@pytest.mark.parametrize("text", ["", "fast", "1Gbit/s", "-5Mbit"])
def test_what_is_not_a_rate_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="not a rate"):
        LinkRate.parse(text)
