"""FastAPI prediction service: one service for every loading strategy.

/health answers as soon as the process is up; /ready only once the model can serve
(a lazy service is ready at once: it loads on the first /predict).
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .model_holder import (
    ModelHolder,
    compares_in_float32,
    expected_features,
    feature_names,
    first_step,
    import_model_libraries,
)
from .paged_file import PageUnavailable
from .settings import load_settings

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

MAX_BODY_BYTES = 32 * 1024 * 1024
FLOAT32_MAX = float(np.finfo(np.float32).max)

settings = load_settings()
import_model_libraries(settings.model_format)
holder = ModelHolder(settings)
if settings.preload:
    # Load in the master before gunicorn forks its workers, then freeze the GC's view of the
    # model so no collection touches (and so un-shares) its pages in the workers.
    holder.get()
    gc.freeze()

# Tests only (MLBENCH_TEST_LEAK_PER_PREDICT_BYTES): what each /predict keeps, written so
# every page is touched, to be OOM-killed in the middle of the harness's latency requests.
_kept: list[bytes] = []

FiniteNumber = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class PredictRequest(BaseModel):
    """Rows of values in the model's feature order, or (for a model fitted with feature
    names, as the original service took them) records of named values."""

    rows: list[list[FiniteNumber]] | None = Field(None, min_length=1,
                                                  max_length=settings.max_batch_rows)
    records: list[dict[str, FiniteNumber]] | None = Field(None, min_length=1,
                                                          max_length=settings.max_batch_rows)


# A regressor's numbers, or a classifier's classes as the model has them (ints, strings).
Prediction = float | int | str | bool


class PredictResponse(BaseModel):
    predictions: list[Prediction]
    n_rows: int


class ProbaResponse(BaseModel):
    """A classifier's class probabilities: one row per request row, one column per class."""

    probabilities: list[list[float]]
    classes: list[Prediction]
    n_rows: int


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    if settings.loading == "eager" and not holder.loaded:
        holder.load_in_background()
    # uvicorn accepts connections once the lifespan start-up returns: the harness takes
    # ready_s from this stamp (host and container share the kernel's clock), not from polling.
    holder.story.server_up = time.time()
    yield
    holder.close()


app = FastAPI(title="Model prediction service", lifespan=lifespan)


@app.exception_handler(RequestValidationError)
async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
    # Echoing the input back would put NaN/inf into JSON (a 500): report where and why only.
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
              for e in error.errors()]
    return JSONResponse({"detail": errors}, 422)


class _TooLarge(HTTPException):
    """Raised from the body stream; an HTTPException, so FastAPI's body parsing passes it on
    (it turns any other error there into a 400)."""

    def __init__(self) -> None:
        super().__init__(413, detail=f"request body over {MAX_BODY_BYTES} bytes")


class BodyLimit:
    """413 for a body over MAX_BODY_BYTES, by its Content-Length or, for a chunked body
    without one, as its bytes arrive (found by fuzzing: a 34 MB chunked body was read whole
    and parsed into 17 M numbers). A pure ASGI middleware, so the stream itself is counted."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        holder.note_request()
        too_large = JSONResponse({"detail": f"request body over {MAX_BODY_BYTES} bytes"}, 413)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            await too_large(scope, receive, send)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:
                    raise _TooLarge
            return message

        async def noted_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, noted_send)
        except _TooLarge:
            if not started:
                await too_large(scope, receive, send)


app.add_middleware(BodyLimit)


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "up"}


@app.get("/ready")
def ready() -> JSONResponse:
    if holder.failed:
        return JSONResponse({"ready": False, "error": holder.story.error}, 503)
    if holder.loaded or settings.loading == "lazy":
        return JSONResponse({"ready": True, "model_loaded": holder.loaded}, 200)
    waiting: dict[str, Any] = {"ready": False, "error": None}
    if holder.story.download_total_bytes:  # a download under way: how far it got
        waiting["download"] = {"received_bytes": holder.story.download_received_bytes,
                               "total_bytes": holder.story.download_total_bytes}
    return JSONResponse(waiting, 503)


@app.get("/metadata")
def metadata() -> dict[str, Any]:
    return holder.describe()


@app.post("/predict", response_model=PredictResponse)
def predict(request: PredictRequest) -> PredictResponse:
    model = _serving_model()
    batch = _batch_of(request, model)
    started = time.perf_counter()
    # Models fitted on a DataFrame accept an array in column order (scikit-learn only warns),
    # which keeps pandas out of the image.
    try:
        values = model.predict(batch)
    except ValueError as error:  # the model refuses these values (e.g. a step's range check)
        raise HTTPException(422, detail=f"the model refused the values: {error}") from None
    except PageUnavailable as error:  # flat_lazy: pages it needs did not arrive
        raise HTTPException(503, detail=f"model pages unavailable: {error}") from None
    logging.getLogger("service.predict").debug("predict %.4fs", time.perf_counter() - started)
    if settings.leak_per_predict_bytes:
        _kept.append(b"\x01" * settings.leak_per_predict_bytes)
    # tolist(): Python numbers for a regressor, the classes' own type for a classifier.
    return PredictResponse(predictions=np.ravel(values).tolist(), n_rows=len(batch))


@app.post("/predict_proba", response_model=ProbaResponse)
def predict_proba(request: PredictRequest) -> ProbaResponse:
    model = _serving_model()
    if not hasattr(model, "predict_proba"):
        raise HTTPException(422, detail=f"{type(model).__name__} has no predict_proba: it is "
                                        "not a classifier; use /predict")
    batch = _batch_of(request, model)
    try:
        probabilities = np.asarray(model.predict_proba(batch), dtype=np.float64)
    except ValueError as error:
        raise HTTPException(422, detail=f"the model refused the values: {error}") from None
    except PageUnavailable as error:
        raise HTTPException(503, detail=f"model pages unavailable: {error}") from None
    return ProbaResponse(probabilities=probabilities.tolist(),
                         classes=np.asarray(model.classes_).tolist(), n_rows=len(batch))


def _serving_model() -> Any:
    """The model, or the 503 that says why there is none yet."""
    if settings.loading == "eager" and not holder.loaded:
        detail = holder.story.error or "model is still loading"
        raise HTTPException(503, detail=detail)
    try:
        return holder.get()
    except Exception as error:
        raise HTTPException(503, detail=f"model unavailable: {error}") from error


def _batch_of(request: PredictRequest, model: Any) -> Any:
    """The request's rows as the float64 array the model predicts on, or a 422 naming what
    is wrong with them."""
    rows = _rows_of(request, model)
    n_features = expected_features(model)
    widths = {len(row) for row in rows}
    if n_features is not None and widths != {n_features}:
        raise HTTPException(
            422, detail=f"each row must have {n_features} features; got rows of {sorted(widths)}"
        )
    if len(widths) != 1:
        raise HTTPException(422, detail="all rows must have the same number of features")
    batch = np.asarray(rows, dtype=np.float64)
    # Trees compare in float32: a finite float64 beyond its range would become inf there
    # (found by fuzzing: it was a 500). Only for them: a linear model takes any finite value.
    if compares_in_float32(first_step(model)) and np.any(np.abs(batch) > FLOAT32_MAX):
        raise HTTPException(422, detail=f"values must lie within ±{FLOAT32_MAX:.4g} (float32)")
    return batch


def _rows_of(request: PredictRequest, model: Any) -> list[list[float]]:
    """The request's values as rows in the model's feature order."""
    if (request.rows is None) == (request.records is None):
        raise HTTPException(422, detail="send either rows (lists of values) or records "
                                        "(objects of named values)")
    if request.rows is not None:
        return request.rows
    names = feature_names(model)
    if names is None:
        raise HTTPException(422, detail="this model was fitted without feature names: send "
                                        "rows of values in feature order")
    assert request.records is not None
    known = set(names)
    rows = []
    for index, record in enumerate(request.records):
        missing = [name for name in names if name not in record]
        unknown = sorted(set(record) - known)
        if missing or unknown:
            problems = [f"missing {_few(missing)}" if missing else "",
                        f"unknown {_few(unknown)}" if unknown else ""]
            raise HTTPException(422, detail=f"records[{index}]: "
                                            + "; ".join(p for p in problems if p))
        rows.append([record[name] for name in names])
    return rows


def _few(names: list[str], shown: int = 10) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
