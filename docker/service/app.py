"""FastAPI prediction service: one service for every loading strategy.

/health answers as soon as the process is up; /ready only once the model can serve
(a lazy service is ready at once: it loads on the first /predict).
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from .model_holder import ModelHolder, expected_features
from .settings import load_settings

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

MAX_BODY_BYTES = 32 * 1024 * 1024
FLOAT32_MAX = float(np.finfo(np.float32).max)

settings = load_settings()
holder = ModelHolder(settings)
if settings.preload:
    # Load in the master before gunicorn forks its workers, then freeze the GC's view of the
    # model so no collection touches (and so un-shares) its pages in the workers.
    holder.get()
    gc.freeze()

FiniteNumber = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class PredictRequest(BaseModel):
    rows: list[list[FiniteNumber]] = Field(min_length=1, max_length=settings.max_batch_rows)


class PredictResponse(BaseModel):
    predictions: list[float]
    n_rows: int


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    if settings.loading == "eager" and not holder.loaded:
        holder.load_in_background()
    # uvicorn accepts connections once the lifespan start-up returns: the harness takes
    # ready_s from this stamp (host and container share the kernel's clock), not from polling.
    holder.story.server_up = time.time()
    yield


app = FastAPI(title="Model prediction service", lifespan=lifespan)


@app.exception_handler(RequestValidationError)
async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
    # Echoing the input back would put NaN/inf into JSON (a 500): report where and why only.
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
              for e in error.errors()]
    return JSONResponse({"detail": errors}, 422)


@app.middleware("http")
async def limit_body_size(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    holder.note_request()
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
        return JSONResponse({"detail": f"request body over {MAX_BODY_BYTES} bytes"}, 413)
    return await call_next(request)


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "up"}


@app.get("/ready")
def ready() -> JSONResponse:
    if holder.failed:
        return JSONResponse({"ready": False, "error": holder.story.error}, 503)
    if holder.loaded or settings.loading == "lazy":
        return JSONResponse({"ready": True, "model_loaded": holder.loaded}, 200)
    return JSONResponse({"ready": False, "error": None}, 503)


@app.get("/metadata")
def metadata() -> dict[str, Any]:
    return holder.describe()


@app.post("/predict", response_model=PredictResponse)
def predict(request: PredictRequest) -> PredictResponse:
    if settings.loading == "eager" and not holder.loaded:
        detail = holder.story.error or "model is still loading"
        raise HTTPException(503, detail=detail)
    try:
        model = holder.get()
    except Exception as error:
        raise HTTPException(503, detail=f"model unavailable: {error}") from error
    n_features = expected_features(model)
    widths = {len(row) for row in request.rows}
    if n_features is not None and widths != {n_features}:
        raise HTTPException(
            422, detail=f"each row must have {n_features} features; got rows of {sorted(widths)}"
        )
    if len(widths) != 1:
        raise HTTPException(422, detail="all rows must have the same number of features")
    started = time.perf_counter()
    batch = np.asarray(request.rows, dtype=np.float64)
    # Trees compare in float32: a finite float64 beyond its range would become inf there
    # (found by fuzzing: it was a 500).
    if np.any(np.abs(batch) > FLOAT32_MAX):
        raise HTTPException(422, detail=f"values must lie within ±{FLOAT32_MAX:.4g} (float32)")
    # Models fitted on a DataFrame accept an array in column order (scikit-learn only warns),
    # which keeps pandas out of the image.
    values = model.predict(batch)
    logging.getLogger("service.predict").debug("predict %.4fs", time.perf_counter() - started)
    return PredictResponse(predictions=[float(v) for v in np.ravel(values)], n_rows=len(request.rows))
