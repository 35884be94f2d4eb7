"""mmap-lazy's predictions against scikit-learn's, on many rows, while the file is half here.

``python -m bench.micro.lazy_exact --model-size 5.45GB`` serves the synthetic model's flat
file from a real S3 server (rclone serve s3 on loopback, the harness's arguments) to the
service's own paged reader (the code mmap-lazy's image runs: PagedFile, the presigned
ranged GETs, the per-page check against the pinned manifest), starts the background fill,
and when half of the file is present predicts ROWS new players (the synthetic FIFA data of
another seed, never seen in training) with the pages those rows still lack fetched on
demand; then, once the file is whole, again. Both answers are compared with the model's own
``predict`` in a fresh process (bench.measure.inprocess), exactly: equal float64 values.
Prints one JSON object: what was present when each prediction ran, what it fetched, and
whether it was equal.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import UsageError
from bench.host.paths import cache_dir, service_package
from bench.measure.inprocess import predictions
from bench.micro import command
from bench.model.flat_forest import convert
from bench.progress import Progress
from bench.servers.s3 import start_local_server
from datos.synthetic_fifa import generate

BUCKET, KEY = "models", "model.flat"
ROWS_SEED = 977  # players the model never saw (it trained on seed 0's)


def store_settings(url: str, credentials: Path, node_path: Path) -> Any:
    """The service's settings (its defaults: page concurrency, budget) for a flat file at
    `node_path` paged from the loopback store at `url` (the package imported first)."""
    settings = importlib.import_module("backend.settings")
    return dataclasses.replace(settings.load_settings(), model_path=str(node_path),
                               s3_endpoint=url, s3_bucket=BUCKET, s3_key=KEY,
                               s3_credentials_file=str(credentials))


def _predict(model: Any, paged: Any, rows: np.ndarray) -> dict[str, Any]:
    before = paged.snapshot()
    started = time.perf_counter()
    answer = model.predict(rows)
    seconds = time.perf_counter() - started
    after = paged.snapshot()
    return {"answer": answer, "seconds": seconds,
            "present_before": before["present_bytes"] / before["size_bytes"],
            "demand_bytes": after["demand_bytes"] - before["demand_bytes"],
            "demand_requests": after["demand_requests"] - before["demand_requests"]}


def compare(model_path: Path, sha256: str, rows: np.ndarray, half: float,
            progress: Progress) -> dict[str, Any]:
    """Serve the model's flat file page by page from a real S3 server; predict `rows` when
    `half` of it is present and again when it is whole; each against the model's own."""
    flat = convert(model_path, sha256, cache_dir(), "lazy-exact")
    with progress.step(f"the model's own predict of {len(rows)} rows, in a fresh process"):
        expected = np.asarray(predictions("joblib", model_path, rows.tolist()))
    service_package()  # the service's modules, imported as the image imports them
    load_flat_lazy = importlib.import_module("backend.load_flat_lazy")
    page_manifest = importlib.import_module("backend.page_manifest")
    access, secret = "AKID" + secrets.token_hex(8).upper(), secrets.token_hex(20)
    with tempfile.TemporaryDirectory(prefix="mlbench-lazy-exact-") as scratch:
        root = Path(scratch)
        (root / "store" / BUCKET).mkdir(parents=True)
        os.link(flat.path, root / "store" / BUCKET / KEY)
        manifest_bytes = page_manifest.manifest_of(str(flat.path))
        (root / "store" / BUCKET / (KEY + page_manifest.MANIFEST_SUFFIX)).write_bytes(
            manifest_bytes)
        (root / "credentials").write_text(
            f"AWS_ACCESS_KEY_ID={access}\nAWS_SECRET_ACCESS_KEY={secret}\n")
        server, url = start_local_server(root / "store", access, secret)
        try:
            manifest = page_manifest.Manifest.parse(manifest_bytes)
            served = load_flat_lazy.paged_model(
                store_settings(url, root / "credentials", root / "node.flat"), manifest)
            paged = served.paged
            try:
                paged.start_fill()
                with progress.step(f"filling until {half:.0%} of the file is here"):
                    while paged.present_bytes < half * manifest.size:
                        time.sleep(0.01)
                found = {"half_filled": _predict(served, paged, rows)}
                with progress.step("filling the rest"):
                    while not paged.whole:
                        time.sleep(0.1)
                found["whole"] = _predict(served, paged, rows)
            finally:
                paged.close()
        finally:
            server.terminate()
            server.wait(timeout=10)
    report: dict[str, Any] = {"flat_bytes": flat.bytes, "rows": len(rows)}
    for name, each in found.items():
        answer = each.pop("answer")
        each["equal_to_sklearn"] = bool(np.array_equal(answer, expected))
        each["rows_differing"] = int(np.count_nonzero(answer != expected))
        report[name] = each
    return report


def main() -> None:
    parser = command.parser("bench.micro.lazy_exact", __doc__)
    parser.add_argument("--rows", type=int, default=2000, help="rows predicted (default 2000)")
    parser.add_argument("--half", type=float, default=0.5,
                        help="share of the file present when the first prediction runs")
    args = parser.parse_args()
    if not 0 < args.half < 1 or args.rows < 1:
        raise UsageError("--half is a share between 0 and 1, --rows at least 1")
    progress = Progress()
    model = command.model_of(args, progress)
    rows = generate(n_players=args.rows, seed=ROWS_SEED).features
    report = {"model_bytes": model.bytes,
              **compare(model.path, model.sha256, rows, args.half, progress)}
    print(json.dumps(report, indent=2))
    if not (report["half_filled"]["equal_to_sklearn"] and report["whole"]["equal_to_sklearn"]):
        raise SystemExit(1)


if __name__ == "__main__":
    command.run(main)
