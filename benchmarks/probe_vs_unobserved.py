"""Does the harness's probe slow what it measures? Interleaved starts of a volume image: one
measured by the harness's trial (run_start), one that nobody polls (started, left alone for
WAIT_S, then /metadata read once). Both report the service's own load_s.

    python -m bench run --strategies volume --model-size 5.45GB --trials 1 --builder buildkit --keep
    python benchmarks/probe_vs_unobserved.py mlbench-volume-buildkit:<run-id> MODEL.joblib 4
    python -m bench clean
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import requests

from bench.engine import BindMount, DockerEngine
from bench.host.paths import cache_dir
from bench.measure.spec import StartSpec, TrialSettings, container_spec
from bench.measure.trial import run_start
from bench.model.source import user_model
from bench.progress import Progress
from bench.run.cleanup import run_labels

WAIT_S = 75.0
image, model_path, pairs = sys.argv[1], sys.argv[2], int(sys.argv[3])
engine = DockerEngine.connect()
labels = run_labels("probe-check", keep=False)
network = "mlbench-probe-check"
engine.create_network(network, labels)
model = user_model(Path(model_path), cache_dir(), Progress(quiet=True))
start = StartSpec("-", env={"MODEL_PATH": "/app/datos/modelos/modelo_fifa.joblib",
                            "MODEL_LOADING": "eager", "MODEL_CODEC": "none"},
                  binds=[BindMount(model_path, "/app/datos/modelos/modelo_fifa.joblib")])
observed: list[float] = []
unobserved: list[float] = []
ready: list[float] = []
try:
    for i in range(pairs):
        result = run_start(engine, image, f"mlbench-probe-check-h{i}", labels, network, start,
                           model, TrialSettings(latency_requests=5))
        observed.append(result.load_s or float("nan"))
        ready.append(result.model_ready_s)
        print(f"pair {i + 1}: harness load_s {observed[-1]:.2f} model_ready_s {ready[-1]:.2f} "
              f"probe_requests {result.probe_requests}", flush=True)
        cid = engine.create_container(container_spec(image, f"mlbench-probe-check-u{i}", labels,
                                                     start, TrialSettings(), network=network))
        try:
            engine.start_container(cid)
            time.sleep(WAIT_S)
            meta = requests.get(f"http://127.0.0.1:{engine.published_port(cid)}/metadata",
                                timeout=10).json()
        finally:
            engine.remove_container(cid)
        unobserved.append(meta["load_s"])
        print(f"pair {i + 1}: unobserved load_s {unobserved[-1]:.2f} "
              f"requests_before_loaded {meta['story']['requests_before_loaded']}", flush=True)
finally:
    engine.remove_labelled("mlbench.run=probe-check")
print(f"harness    load_s median {statistics.median(observed):.2f} "
      f"({min(observed):.2f}-{max(observed):.2f})  model_ready_s median "
      f"{statistics.median(ready):.2f} ({min(ready):.2f}-{max(ready):.2f})")
print(f"unobserved load_s median {statistics.median(unobserved):.2f} "
      f"({min(unobserved):.2f}-{max(unobserved):.2f})")
print(f"ratio of medians {statistics.median(observed) / statistics.median(unobserved):.3f}")
