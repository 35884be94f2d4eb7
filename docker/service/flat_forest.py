"""A forest as plain arrays in one memory-mapped file, and a predictor over it (numpy only).

Every strategy that ends in ``joblib.load`` pays CPU time in proportion to the model (unpickling,
then scikit-learn's ``Tree.__setstate__`` copying every node array into private memory;
scikit-learn issue 9141) and gives every process its own copy. This format has no load: the file is
mapped read-only, so opening it costs microseconds, its pages are read on first use, and every
process and container that maps the same file shares one copy of it in the page cache. Opening it
runs no pickle (the arrays are raw little-endian numbers), so a file that is not trusted cannot
execute code; preprocessing steps of a Pipeline, if any, stay a small pickle pinned by its SHA-256
in the header.

File layout: MAGIC (8 bytes), the header's length (uint64, little-endian), the JSON header, then
each array at an offset that is a multiple of ALIGN (page-aligned), as the header lists them (dtype
in .npy's descr notation). ``nodes`` holds one 16-byte record per node: ``value`` (float64: the
threshold of a split, the prediction of a leaf), ``right`` (int32, global index of the right child,
-1 on leaves), ``feature`` (int16; int32 and a 24-byte record from 32,768 features) and
``missing_left`` (uint8: where a NaN goes). Each tree is stored in depth-first preorder, so a
split's left child is the next record and needs no field: 16 bytes a node, against 72-80 in a
joblib forest. One record per node: one cache line and one page per node visit; preorder puts a
path's left steps next to each other. After the trees, their crowns (each tree's top
``crown_depth`` levels, all in one region: bench/model/flat_crown.py; a jump record's NaN threshold
sends every input right, to the split in its tree); ``roots`` (int64) gives each tree's first crown
record. A classifier (header ``task``: "classification") keeps in a leaf's ``value`` the index of
its row in ``leaf_proba`` (float64, one column per class: the leaf's class fractions, as
scikit-learn stores them); a regressor of several outputs (header ``outputs`` > 1) likewise in
``leaf_values`` (a column per output), and predicts a row of outputs per input row.

Predictions are scikit-learn's, bit for bit: inputs cast to float32 as scikit-learn does, then
compared ``<=`` against the float64 threshold; NaN routed by the node's missing-value direction;
tree outputs (a classifier's leaf fractions) added in estimator order in float64 and divided at the
end; a classifier predicts ``classes[argmax(proba)]``.

A boosting model (header ``combine``: "sum"; bench/model/flat_boosting.py writes it) sums instead:
raw column k starts at ``baseline[k]`` and adds, in stage order, the leaf value of every tree whose
``tree_column`` is k; ``link`` maps the raw sums to predictions (identity, exp; a classifier's
probabilities by logit or softmax), ``input_dtype`` says how inputs are read (HistGradientBoosting
compares float64 inputs), ``accumulate`` the precision of the sums (XGBoost's are float32), ``exp``
whose exponential the links apply ("libm": the C library's, one value at a time, as scipy's expit
and LightGBM call it; "numpy": numpy's ufunc, as scikit-learn's exp link and softmax call it; the
two differ in the last bit where numpy's loop is vectorised, as with AVX-512), ``nan`` whether NaN
is routed or refused (GradientBoosting refuses non-finite inputs), and ``decision`` how a
classifier picks its class: ``argmax_proba`` (a forest's, LightGBM's), ``argmax_raw``, ``raw>0`` or
``raw>=0`` (a binary GradientBoosting classifier's). A file without these fields is a forest."""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

MAGIC = b"MLBFLAT\x02"
# 3: a boosting model's header says whose exp its links apply (``exp``). 4: the crown.
FORMAT_VERSION = 4
FORMAT = f"mlbench-flat-forest/{FORMAT_VERSION}"
ALIGN = 4096
ARRAYS = ("nodes", "roots")
ROWS_PER_CHUNK = 512  # rows traversed at once: bounds the (rows x trees) index arrays
OnPass = Callable[[np.ndarray], None]
# Told (array, indices) before each gather from nodes or the leaf rows: a file paged on demand
Touch = Callable[[str, np.ndarray], None]  # (paged_file.py) fetches a whole pass's pages there
LEAF = -1  # `right` of a leaf


def node_dtype(feature: np.dtype[Any]) -> np.dtype[Any]:
    """One node's record; C alignment pads it to 16 bytes (24 with int32 features)."""
    return np.dtype([("value", "<f8"), ("right", "<i4"), ("feature", feature),
                     ("missing_left", "u1")], align=True)


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
            described[name] = {"dtype": np.lib.format.dtype_to_descr(array.dtype),
                               "shape": list(array.shape), "offset": offset, "sha256": digest}
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


def leaf_rows_array(header: Mapping[str, Any]) -> str | None:
    """The array of leaf rows a forest's file has (None: its leaves hold one number)."""
    if header.get("combine", "mean") != "mean":
        return None
    if header.get("task") == "classification":
        return "leaf_proba"
    return "leaf_values" if int(header.get("outputs", 1)) > 1 else None


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
    nodes: np.ndarray  # node_dtype records, every tree in preorder
    roots: np.ndarray
    # A leaf's row, where a leaf holds more than one number: a forest classifier's class
    # fractions (array leaf_proba), a multi-output regressor's outputs (leaf_values).
    leaf_rows: np.ndarray | None = None
    tree_column: np.ndarray | None = None  # a boosting model's: the raw column of each tree
    touch: Touch | None = None

    @classmethod
    def open(cls, path: str, verify: bool = False, touch: Touch | None = None) -> FlatForest:
        """Map the file read-only (no copy, no pickle). ``verify`` hashes every array against
        the header first: for a file from elsewhere; a trusted local mount skips it."""
        header = read_header(path)
        mapped: dict[str, np.ndarray] = {}
        combine = header.get("combine", "mean")
        if combine not in ("mean", "sum"):
            raise FlatForestError(f"{path} combines its trees by {combine!r}, which this "
                                  "reader does not know")
        leaf_array = leaf_rows_array(header)
        wanted = (*ARRAYS, "tree_column") if combine == "sum" else (
            ARRAYS if leaf_array is None else (*ARRAYS, leaf_array))
        for name in wanted:
            spec = header["arrays"].get(name)
            if spec is None:
                raise FlatForestError(f"{path} has no array {name!r}")
            dtype = np.lib.format.descr_to_dtype(spec["dtype"])
            array = np.memmap(path, dtype=dtype, mode="r", offset=spec["offset"],
                              shape=tuple(spec["shape"]))
            if verify and hashlib.sha256(array.data).hexdigest() != spec["sha256"]:
                raise FlatForestError(f"{path}: array {name} does not match its SHA-256")
            mapped[name] = array.view(np.ndarray)  # numpy's own ops on it, not memmap's
        if leaf_array is not None:
            mapped["leaf_rows"] = mapped.pop(leaf_array)
        return cls(header, **mapped, touch=touch)

    @property
    def n_features(self) -> int:
        return int(self.header["n_features"])

    @property
    def n_estimators(self) -> int:
        return int(self.roots.shape[0])

    @property
    def classes(self) -> np.ndarray | None:
        """A classifier's classes, in scikit-learn's order (None: a regressor)."""
        if self.header.get("task") != "classification":
            return None
        return np.asarray(self.header["classes"])

    @property
    def boosted(self) -> bool:
        return self.tree_column is not None

    def predict(self, rows: Any, on_pass: OnPass | None = None) -> np.ndarray:
        """What the model's predict returns for these rows, exactly. ``on_pass`` is told
        the nodes every pass visits (bench/micro/flat_profile.py counts pages with it)."""
        classes = self.classes
        if classes is None:
            if not self.boosted:
                return self._combined(rows, on_pass)
            return _inverse_link(self.header["link"], self._combined(rows, on_pass)[:, 0],
                                 self.header["exp"])
        decision = self.header.get("decision", "argmax_proba")
        if decision == "argmax_proba":
            encoded = np.argmax(self.predict_proba(rows, on_pass), axis=1)
        else:
            raw = self._combined(rows, on_pass)
            if decision == "argmax_raw":
                encoded = np.argmax(raw, axis=1)
            elif decision in ("raw>0", "raw>=0"):
                positive = raw[:, 0] >= 0 if decision == "raw>=0" else raw[:, 0] > 0
                encoded = positive.astype(np.int64)
            else:
                raise FlatForestError(f"unknown decision {decision!r}")
        picked: np.ndarray = classes.take(encoded, axis=0)
        return picked

    def predict_proba(self, rows: Any, on_pass: OnPass | None = None) -> np.ndarray:
        """A classifier's class probabilities, exactly as its predict_proba."""
        if self.classes is None:
            raise ValueError("a regressor has no class probabilities")
        if not self.boosted:
            return self._combined(rows, on_pass)
        raw = self._combined(rows, on_pass)
        if raw.shape[1] == 1:  # scikit-learn's HalfBinomialLoss.predict_proba (and XGBoost's)
            proba = np.empty((raw.shape[0], 2), raw.dtype)
            proba[:, 1] = _inverse_link("logit", raw[:, 0], self.header["exp"])
            proba[:, 0] = 1 - proba[:, 1]
            return proba
        return _inverse_link("softmax", raw, self.header["exp"])

    def _combined(self, rows: Any, on_pass: OnPass | None) -> np.ndarray:
        """A forest's mean over its trees; a boosting model's raw sums (rows x columns)."""
        if self.header.get("input_dtype", "float32") == "float64":
            x = np.asarray(rows, dtype=np.float64)
        else:  # scikit-learn validates X as float32 and compares it, promoted, with the
            # float64 threshold: the same two casts here give the same comparisons.
            x = np.asarray(rows, dtype=np.float32).astype(np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got shape {x.shape}")
        if self.header.get("nan") == "refuse" and not np.isfinite(x).all():
            raise ValueError(f"Input X contains NaN or infinity: {self.header['estimator']} "
                             "does not accept missing values")
        return np.concatenate([self._predict_chunk(x[start:start + ROWS_PER_CHUNK], on_pass)
                               for start in range(0, x.shape[0], ROWS_PER_CHUNK)])

    def _predict_chunk(self, x: np.ndarray, on_pass: OnPass | None = None) -> np.ndarray:
        n_rows, n_trees = x.shape[0], self.n_estimators
        flat_x = x.ravel()
        # One walker per (tree, row), tree-major: walker w walks tree w // n_rows for row
        # w % n_rows, so the walkers of one tree are neighbours and a batch's reads of that
        # tree's top levels hit the same cache lines. Every walker goes down one level per
        # pass, all at once; a walker that reaches a leaf leaves the arrays, so a pass costs
        # what the trees' real depths cost.
        walker = np.arange(n_trees * n_rows)
        at = np.repeat(np.asarray(self.roots), n_rows)
        leaf_value = np.empty(walker.size, np.float64)
        while at.size:
            if on_pass is not None:
                on_pass(at)
            if self.touch is not None:
                self.touch("nodes", at)
            record = self.nodes[at]  # one gather of whole records: one cache line a visit
            right = record["right"]
            leaf = right == LEAF
            if leaf.any():
                leaf_value[walker[leaf]] = record["value"][leaf]
                split = ~leaf
                walker, at, record, right = walker[split], at[split], record[split], right[split]
                if not at.size:
                    break
            value = flat_x[walker % n_rows * x.shape[1] + record["feature"]]
            go_left = value <= record["value"]  # False for NaN, decided next
            nan = np.isnan(value)
            if nan.any():
                go_left = np.where(nan, record["missing_left"] != 0, go_left)
            at = np.where(go_left, at + 1, right)  # preorder: the left child is the next node
        per_tree = leaf_value.reshape(n_trees, n_rows)
        if self.boosted:
            return self._raw_sums(per_tree)
        # Added tree by tree in estimator order (cumsum is sequential), then divided: the
        # forest's own float64 arithmetic (a classifier's: each leaf's class fractions).
        if self.leaf_rows is not None:
            leaves = per_tree.astype(np.int64)
            if self.touch is not None:
                self.touch(str(leaf_rows_array(self.header)), leaves.ravel())
            per_tree = self.leaf_rows[leaves]
        total: np.ndarray = np.cumsum(per_tree, axis=0)[-1]
        return total / n_trees

    def _raw_sums(self, per_tree: np.ndarray) -> np.ndarray:
        """Each raw column: its baseline, then its trees' leaf values added in stage order
        (cumsum is sequential: the library's `raw[:, k] += tree` one tree at a time)."""
        assert self.tree_column is not None
        baseline = self.header["baseline"]
        # XGBoost adds float32 leaves into a float32 margin: the same, one tree at a time.
        dtype = np.float32 if self.header.get("accumulate") == "float32" else np.float64
        per_tree = per_tree.astype(dtype, copy=False)
        raw = np.empty((per_tree.shape[1], len(baseline)), dtype)
        for column, start in enumerate(baseline):
            terms = np.concatenate([np.full((1, per_tree.shape[1]), start, dtype),
                                    per_tree[self.tree_column == column]])
            raw[:, column] = np.cumsum(terms, axis=0, dtype=dtype)[-1]
        return raw


def _libm_exp_scalar(value: float) -> float:
    try:
        return math.exp(value)
    except OverflowError:  # the C library's exp gives inf there; Python's raises
        return math.inf


# The C library's exp, one value at a time (math.exp calls it). numpy's float64 exp is a
# vectorised loop of its own where the CPU has AVX-512, and differs from it in the last bit
# in 2 to 5 values of 100 (on an AVX-512 host: 3,758 of 200,000 expit arguments, 46,316 of
# 1,000,000 normal values): scipy's expit and LightGBM call the C library's. A Python call
# per value costs about 0.1 microseconds: 400 values for 100 rows of a 4-class model.
_LIBM_EXP = np.frompyfunc(_libm_exp_scalar, 1, 1)


def _exp(values: np.ndarray, exp: str) -> np.ndarray:
    """exp in the values' own precision, as the model's library computes it (``exp``: "libm"
    or "numpy"). float32 (XGBoost's, which calls glibc's expf): exp in float64, rounded once
    (numpy's own float32 exp differs from expf in 4 values of 10 here; this in about 6 of
    10,000)."""
    if exp not in ("libm", "numpy"):
        raise FlatForestError(f"unknown exp {exp!r}")
    with np.errstate(over="ignore"):  # exp overflows to inf: expit is then 0, as scipy's
        if values.dtype == np.float32:
            rounded: np.ndarray = np.exp(values.astype(np.float64)).astype(np.float32)
            return rounded
        if exp == "libm":
            return np.asarray(_LIBM_EXP(values), dtype=np.float64).reshape(values.shape)
        exponential: np.ndarray = np.exp(values)
        return exponential


def _inverse_link(link: str, raw: np.ndarray, exp: str) -> np.ndarray:
    """scikit-learn's inverse links (sklearn/_loss/link.py; XGBoost's are the same in
    float32), with numpy alone, in the raw sums' precision."""
    one = raw.dtype.type(1.0)
    if link == "identity":
        return raw
    if link == "exp":
        return _exp(raw, exp)
    if link == "logit":  # scipy.special.expit (and XGBoost's Sigmoid): 1 / (1 + exp(-x))
        expit: np.ndarray = one / (one + _exp(-raw, exp))
        return expit
    if link == "softmax":  # sklearn.utils.extmath.softmax (XGBoost's Softmax alike)
        shifted = _exp(raw - np.max(raw, axis=1).reshape((-1, 1)), exp)
        shifted /= np.sum(shifted, axis=1).reshape((-1, 1))
        return shifted
    raise FlatForestError(f"unknown link {link!r}")


class FlatModel:
    """What the service serves for MODEL_FORMAT=flat: the mapped forest, behind the
    preprocessing steps of a Pipeline when the model had any."""

    def __init__(self, forest: FlatForest, preprocessing: Any = None) -> None:
        self.forest = forest
        self.preprocessing = preprocessing
        self.n_features_in_ = int(forest.header.get("input_n_features", forest.n_features))
        names = forest.header.get("feature_names")
        self.feature_names_in_ = None if names is None else np.asarray(names, dtype=object)
        if forest.classes is not None:  # a classifier answers /predict_proba too
            self.classes_ = forest.classes
            self.predict_proba = self._predict_proba

    def predict(self, rows: Any) -> np.ndarray:
        if self.preprocessing is not None:
            rows = self.preprocessing.transform(rows)
        return self.forest.predict(rows)

    def _predict_proba(self, rows: Any) -> np.ndarray:
        if self.preprocessing is not None:
            rows = self.preprocessing.transform(rows)
        return self.forest.predict_proba(rows)


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
