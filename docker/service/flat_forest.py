"""A forest as plain arrays in one memory-mapped file, and a predictor over it (numpy only).

Every strategy that ends in ``joblib.load`` pays CPU time in proportion to the model
(unpickling, then scikit-learn's ``Tree.__setstate__`` copying every node array into private
memory; scikit-learn issue 9141) and gives every process its own copy. This format has no
load: the file is mapped read-only, so opening it costs microseconds, its pages are read on
first use, and every process and container that maps the same file shares one copy of it in
the page cache. Opening it runs no pickle (the arrays are raw little-endian numbers), so a
file that is not trusted cannot execute code; preprocessing steps of a Pipeline, if any, stay
a small pickle pinned by its SHA-256 in the header.

File layout: MAGIC (8 bytes), the header's length (uint64, little-endian), the JSON header,
then each array at an offset that is a multiple of ALIGN (page-aligned), as the header lists
them. Per node: ``left``/``right`` (int32, global node indices, -1 on leaves), ``feature``
(int16 when fewer than 32,768 features, else int32), ``value`` (float64: the threshold of a
split, the prediction of a leaf) and ``missing_left`` (uint8: where a NaN goes); per tree:
``roots`` (int64). About 19 bytes a node, against 72-80 in a joblib forest.

Predictions are scikit-learn's, bit for bit: inputs cast to float32 as scikit-learn does, then
compared ``<=`` against the float64 threshold; NaN routed by the node's missing-value
direction; tree outputs added in estimator order in float64 and divided at the end.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

MAGIC = b"MLBFLAT\x01"
FORMAT = "mlbench-flat-forest/1"
ALIGN = 4096
NODE_ARRAYS = ("left", "right", "feature", "value", "missing_left")
ROWS_PER_CHUNK = 512  # rows traversed at once: bounds the (rows x trees) index arrays
OnPass = Callable[[np.ndarray], None]


class FlatForestError(ValueError):
    """The file is not a flat forest this reader understands, or its arrays do not match."""


def _aligned(offset: int) -> int:
    return (offset + ALIGN - 1) // ALIGN * ALIGN


def write_flat(path: str, arrays: Mapping[str, np.ndarray], header: dict[str, Any]) -> None:
    """Write the arrays page-aligned after the header; the header gets each array's dtype,
    shape, offset and SHA-256. Written to a temporary name and renamed: never half a file."""
    described: dict[str, Any] = {}
    header_room = ALIGN  # grown until the header fits in front of the first array
    while True:
        offset = header_room
        for name, array in arrays.items():
            digest = hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()
            described[name] = {"dtype": array.dtype.str, "shape": list(array.shape),
                               "offset": offset, "sha256": digest}
            offset = _aligned(offset + array.nbytes)
        text = json.dumps({**header, "format": FORMAT, "arrays": described}).encode()
        if len(MAGIC) + 8 + len(text) <= header_room:
            break
        header_room = _aligned(len(MAGIC) + 8 + len(text))
    partial = f"{path}.partial"
    with open(partial, "wb") as out:
        out.write(MAGIC + struct.pack("<Q", len(text)) + text)
        for name, array in arrays.items():
            out.seek(described[name]["offset"])
            out.write(np.ascontiguousarray(array).tobytes())
        out.truncate(_aligned(out.tell()))
    os.replace(partial, path)


def read_header(path: str) -> dict[str, Any]:
    with open(path, "rb") as handle:
        if handle.read(len(MAGIC)) != MAGIC:
            raise FlatForestError(f"{path} is not a flat forest (no {MAGIC!r} at its start)")
        (length,) = struct.unpack("<Q", handle.read(8))
        header: dict[str, Any] = json.loads(handle.read(length))
    if header.get("format") != FORMAT:
        raise FlatForestError(f"{path} has format {header.get('format')!r}, not {FORMAT}")
    return header


@dataclass(frozen=True)
class FlatForest:
    header: dict[str, Any]
    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    value: np.ndarray
    missing_left: np.ndarray
    roots: np.ndarray

    @classmethod
    def open(cls, path: str, verify: bool = False) -> FlatForest:
        """Map the file read-only (no copy, no pickle). ``verify`` hashes every array against
        the header first: for a file from elsewhere; a trusted local mount skips it."""
        header = read_header(path)
        mapped: dict[str, np.ndarray] = {}
        for name in (*NODE_ARRAYS, "roots"):
            spec = header["arrays"].get(name)
            if spec is None:
                raise FlatForestError(f"{path} has no array {name!r}")
            array = np.memmap(path, dtype=np.dtype(spec["dtype"]), mode="r",
                              offset=spec["offset"], shape=tuple(spec["shape"]))
            if verify and hashlib.sha256(array.data).hexdigest() != spec["sha256"]:
                raise FlatForestError(f"{path}: array {name} does not match its SHA-256")
            mapped[name] = array
        return cls(header, **mapped)

    @property
    def n_features(self) -> int:
        return int(self.header["n_features"])

    @property
    def n_estimators(self) -> int:
        return int(self.roots.shape[0])

    def predict(self, rows: Any, on_pass: OnPass | None = None) -> np.ndarray:
        """What the forest's predict returns for these rows, exactly. ``on_pass`` is told
        the nodes every pass visits (bench/micro/flat_profile.py counts pages with it)."""
        # scikit-learn validates X as float32 and compares it, promoted, with the float64
        # threshold: the same two casts here give the same comparisons.
        x = np.asarray(rows, dtype=np.float32).astype(np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got shape {x.shape}")
        return np.concatenate([self._predict_chunk(x[start:start + ROWS_PER_CHUNK], on_pass)
                               for start in range(0, x.shape[0], ROWS_PER_CHUNK)])

    def _predict_chunk(self, x: np.ndarray, on_pass: OnPass | None = None) -> np.ndarray:
        n_rows, n_trees = x.shape[0], self.n_estimators
        # One walker per (row, tree), row-major: walker w is row w // n_trees. Every walker
        # goes down one level per pass, all at once; a pass gathers only the walkers still
        # at a split, so its cost follows the trees' real depths.
        node = np.tile(np.asarray(self.roots), n_rows)
        live = np.arange(node.size)
        while live.size:
            at = node[live]
            if on_pass is not None:
                on_pass(at)
            left = self.left[at]
            inner = left != -1
            live, at, left = live[inner], at[inner], left[inner]
            if not live.size:
                break
            value = x[live // n_trees, self.feature[at]]
            go_left = value <= self.value[at]  # False for NaN, decided next
            nan = np.isnan(value)
            if nan.any():
                go_left = np.where(nan, self.missing_left[at] != 0, go_left)
            node[live] = np.where(go_left, left, self.right[at])
        leaves = self.value[node].reshape(n_rows, n_trees)
        # Added tree by tree in estimator order (cumsum is sequential), then divided: the
        # forest's own float64 arithmetic.
        total: np.ndarray = np.cumsum(leaves, axis=1)[:, -1]
        return total / n_trees


class FlatModel:
    """What the service serves for MODEL_FORMAT=flat: the mapped forest, behind the
    preprocessing steps of a Pipeline when the model had any."""

    def __init__(self, forest: FlatForest, preprocessing: Any = None) -> None:
        self.forest = forest
        self.preprocessing = preprocessing
        self.n_features_in_ = int(forest.header.get("input_n_features", forest.n_features))
        names = forest.header.get("feature_names")
        self.feature_names_in_ = None if names is None else np.asarray(names, dtype=object)

    def predict(self, rows: Any) -> np.ndarray:
        if self.preprocessing is not None:
            rows = self.preprocessing.transform(rows)
        return self.forest.predict(rows)


def open_model(path: str, verify: bool, prefetch: bool) -> FlatModel:
    """Map the forest; load a Pipeline's preprocessing pickle only if its bytes match the
    SHA-256 the header pins; with ``prefetch``, ask the kernel to read the whole file ahead
    in the background (posix_fadvise WILLNEED), so the first predictions fault fewer pages."""
    forest = FlatForest.open(path, verify=verify)
    if prefetch and hasattr(os, "posix_fadvise"):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        finally:
            os.close(fd)
    pinned = forest.header.get("preprocessing")
    if not pinned:
        return FlatModel(forest)
    pre_path = os.path.join(os.path.dirname(path), pinned["file"])
    with open(pre_path, "rb") as handle:
        data = handle.read()
    if hashlib.sha256(data).hexdigest() != pinned["sha256"]:
        raise FlatForestError(f"{pre_path} does not match the SHA-256 the forest pins; "
                              "not unpickled")
    import io

    import joblib

    return FlatModel(forest, joblib.load(io.BytesIO(data)))
