import pytest

from bench.errors import UsageError
from bench.results.units import format_bytes, format_seconds, parse_size


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


def test_a_metric_of_an_undeclared_unit_is_refused() -> None:
    from bench.results.metrics import Metric

    with pytest.raises(ValueError, match="unit 'furlongs' is not one of"):
        Metric("x", "furlongs", "time", "X", "X", "x")


def test_every_unit_a_metric_uses_writes_itself_and_has_a_noise_floor() -> None:
    """Found: `compare` had no noise floor for req/s, so 100.2 against 100.0 req/s could be
    reported as a change; and the chart axis knew four units by name."""
    from bench.results.metrics import METRICS
    from bench.results.units import UNITS, format_compact, format_quantity, number_style

    used = {m.unit for m in METRICS.values()}
    assert used <= set(UNITS) and {"req/s", "MB/s", "s", "bytes"} <= used
    assert all(UNITS[u].noise_floor > 0 for u in used)
    assert format_quantity("req/s", 1234.56) == "1,234.6 req/s"
    with number_style("es"):
        assert format_quantity("req/s", 12345.6) == "12\u2009345,6 req/s"
        assert format_compact("bytes", 2.5e9, ".3g") == "2,5 GB"
    assert format_quantity("fraction", 0.034) == "3.4 %"
