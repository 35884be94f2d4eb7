"""Fuzz /predict (hypothesis): whatever the body, the service answers 200, 400, 413 or 422 and
never a 5xx, and it keeps serving afterwards. The scheduled workflow runs 10,000 examples
(MLBENCH_FUZZ_EXAMPLES); hostile bodies a generator rarely makes (oversized with and without
a Content-Length, nested 100,000 deep, not UTF-8) are sent every time."""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.model.source import ModelArtifact
from tests.test_service import client_for

EXAMPLES = int(os.environ.get("MLBENCH_FUZZ_EXAMPLES", "200"))
FEATURES = 110

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20))
json_values = st.recursive(scalars, lambda children: st.lists(children, max_size=5)
                           | st.dictionaries(st.text(max_size=8), children, max_size=4),
                           max_leaves=30)
rows = st.lists(st.lists(st.floats(allow_nan=True, allow_infinity=True) | st.integers()
                         | st.text(max_size=3), min_size=FEATURES - 2, max_size=FEATURES + 2),
                min_size=0, max_size=4)
valid_rows = st.lists(st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False),
                               min_size=FEATURES, max_size=FEATURES), min_size=1, max_size=3)
records = st.lists(st.dictionaries(st.text(max_size=6), st.floats() | st.integers()
                                   | st.text(max_size=3), max_size=FEATURES + 1), max_size=3)
bodies = (st.builds(lambda r: {"rows": r}, valid_rows)
          | st.builds(lambda r: {"records": r}, records)
          | st.builds(lambda r: {"rows": r}, rows)
          | st.builds(lambda v: {"rows": v}, json_values)
          | json_values)


def test_fuzzed_predict_requests_never_get_a_5xx(tiny_model: ModelArtifact,
                                                 service_env: None) -> None:
    client, _ = client_for({"MODEL_PATH": str(tiny_model.path), "MODEL_LOADING": "lazy",
                            "MODEL_CODEC": "none", "MODEL_SHA256": ""})
    statuses: Counter[int] = Counter()
    raw = (st.binary(max_size=200)  # mostly not UTF-8
           | st.binary(max_size=40).map(lambda b: b'{"rows": [[' + b + b"]]}")
           | st.integers(1, 20_000).map(lambda n: b"[" * n + b"]" * n))  # nested n deep


    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(body=bodies | raw.map(lambda b: {"__raw__": b}))
    def fuzz(body: Any) -> None:
        if isinstance(body, dict) and "__raw__" in body:
            content = body["__raw__"]
        else:
            content = json.dumps(body, allow_nan=True).encode()
        response = client.post("/predict", content=content,
                               headers={"content-type": "application/json"})
        statuses[response.status_code] += 1
        assert response.status_code in (200, 400, 413, 422), (response.status_code, response.text)

    with client:
        fuzz()
        # Still serving the model after all that.
        ok = client.post("/predict", json={"rows": tiny_model.reference_rows})
        assert ok.status_code == 200
    total = sum(statuses.values())
    assert total >= EXAMPLES // 2 and not [s for s in statuses if s >= 500]
    report = os.environ.get("MLBENCH_FUZZ_REPORT")
    if report:
        with open(report, "w") as handle:
            json.dump({"requests": total, "statuses": dict(statuses)}, handle)


def hostile_bodies() -> dict[str, tuple[Any, int]]:
    """name -> (body, the status it must get)."""
    big = b'{"rows": [[' + b"1," * (17 * 1024 * 1024) + b"1]]}"  # 34 MB, over the 32 MiB cap

    def chunked() -> Any:  # no Content-Length: the cap must hold on the stream
        for offset in range(0, len(big), 1 << 20):
            yield big[offset:offset + (1 << 20)]

    return {
        "oversized, with Content-Length": (big, 413),
        "oversized, chunked": (chunked(), 413),
        "nested 100,000 deep": (b"[" * 100_000 + b"]" * 100_000, 400),
        "rows nested 5,000 deep": (b'{"rows": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400),
        "not UTF-8": (b'\xff\xfe{"rows": [[1.0]]}', 400),
        "Latin-1 text": ('{"rows": [["\u00e9"]]}'.encode("latin-1"), 400),
    }


def test_hostile_bodies_get_a_4xx_and_the_service_keeps_serving(
        tiny_model: ModelArtifact, service_env: None) -> None:
    client, _ = client_for({"MODEL_PATH": str(tiny_model.path), "MODEL_LOADING": "lazy",
                            "MODEL_CODEC": "none", "MODEL_SHA256": ""})
    with client:
        for name, (body, status) in hostile_bodies().items():
            response = client.post("/predict", content=body,
                                   headers={"content-type": "application/json"})
            assert response.status_code == status, (name, response.status_code, response.text)
        ok = client.post("/predict", json={"rows": tiny_model.reference_rows})
        assert ok.status_code == 200
