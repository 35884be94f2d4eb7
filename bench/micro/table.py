"""The micro-benchmark table: median seconds per load path, as a ratio to reading the file's
bytes with a warm page cache, with the file's size, decompress-only and unpickle seconds,
and the fresh-process peak memory. Reads pytest-benchmark's JSON; writes <json>.md beside it.

    python -m bench.micro.table results/micro/<stamp>.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.host.fsutil import write_atomic
from bench.results.units import format_bytes, format_seconds


def _param(bench: dict[str, Any]) -> str:
    return str(bench.get("param") or bench["name"])


def render(document: dict[str, Any]) -> str:
    benches = {_param(b): b for b in document["benchmarks"]}
    limit = benches.get("read-warm")
    limit_s = limit["stats"]["median"] if limit else None
    decompress = {name.removesuffix("-decompress"): b["stats"]["median"]
                  for name, b in benches.items() if name.endswith("-decompress")}
    model_bytes = next(iter(benches.values()))["extra_info"].get("model_bytes", 0)
    machine = document.get("machine_info", {})
    lines = [f"Model: {format_bytes(model_bytes)}; {machine.get('cpu', {}).get('brand_raw', '?')} "
             f"x{machine.get('cpu', {}).get('count', '?')}; Python "
             f"{machine.get('python_version', '?')}; {document.get('datetime', '')}", "",
             "| path | median (min–max) | × read-warm | file | decompress | unpickle | "
             "peak RSS added | RSS added at rest | peak / rest | exact | arrays mapped |",
             "|---|--:|--:|--:|--:|--:|--:|--:|--:|:-:|:-:|"]
    for name, bench in benches.items():
        stats, info = bench["stats"], bench["extra_info"]
        if info.get("kind") == "decompress":
            continue
        median = stats["median"]
        ratio = f"{median / limit_s:.1f}×" if limit_s else "–"
        codec = info.get("file", "")
        unzip = decompress.get(codec)
        peak_added = rest_added = None
        if "rss_peak" in info:
            peak_added = info["rss_peak"] - info["rss_before"]
            rest_added = info["rss_after"] - info["rss_before"]
        lines.append(" | ".join([
            f"| {name}",
            f"{format_seconds(median)} ({format_seconds(stats['min'])}–"
            f"{format_seconds(stats['max'])})",
            ratio,
            format_bytes(info.get("file_bytes", 0)),
            format_seconds(unzip) if unzip is not None else "–",
            format_seconds(median - unzip) if unzip is not None else "–",
            format_bytes(peak_added) if peak_added is not None else "–",
            format_bytes(rest_added) if rest_added is not None else "–",
            f"{peak_added / rest_added:.2f}" if peak_added and rest_added else "–",
            "yes" if info.get("exact_predictions") else "–",
            ("yes" if info.get("mapped") else "no") if "mapped" in info else "–",
        ]) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_file():
        print("usage: python -m bench.micro.table RESULTS.json (written by `nox -s micro`)",
              file=sys.stderr)
        return 2
    source = Path(argv[0])
    table = render(json.loads(source.read_text()))
    write_atomic(source.with_suffix(".md"), table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
