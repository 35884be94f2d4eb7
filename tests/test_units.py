import pytest

from bench.errors import UsageError
from bench.units import format_bytes, format_seconds, parse_size


@pytest.mark.parametrize(("text", "expected"), [
    ("64MB", 64_000_000), ("5.45GB", 5_450_000_000), ("512MiB", 512 * 2**20), ("1000", 1000),
    ("2 gb", 2_000_000_000),
])
def test_parse_size_accepts_decimal_and_binary_units(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["5.45XB", "", "GB", "-1MB", "1.2.3MB"])
def test_parse_size_rejects_malformed_with_the_fix(text: str) -> None:
    with pytest.raises(UsageError, match="use a number and a unit"):
        parse_size(text)


def test_formatting_picks_readable_units() -> None:
    assert format_bytes(5_451_894_798) == "5.45 GB"
    assert format_bytes(512) == "512 B"
    assert format_seconds(0.0123) == "12.3 ms"
    assert format_seconds(125.0) == "2m05.0s"
