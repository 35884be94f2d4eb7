"""Every tree's top levels copied together after the trees: the crown of the flat format.

Why: mmap-lazy fetches from the model store the pages each pass of a prediction touches. In
preorder a tree's top levels lie in pages of their own, far apart (a right child follows its
whole left subtree), and the trees a hundred pages from each other: one row's walk of the
synthetic 5.45 GB forest touches 8,580 pages, each a ranged GET of its own, and the requests,
not the bytes, cost the time. With each tree's first CROWN_DEPTH levels copied into one
region, the first passes of every tree read a few hundred adjacent pages, asked in 1 MiB
ranges, and the walk below them stays in the tree's own preorder pages. Traced on that
forest's reference row (the passes the predictor walks, each pass's missing pages asked as
the paged file asks them): no crown, 8,580 GETs and 35.1 MB; crowns of depth 6, 7 and 8:
7,150, 6,610 and 5,976 GETs below them and crowns of 4.3, 8.0 and 14.1 MB in a few 1 MiB
ranges (33.6, 35.1 and 38.6 MB in all); depth 10, 4,634 GETs but 57.5 MB, 3 s more than no
crown on a 100 Mbit link. Depth 7 saves 23% of the requests for no more bytes, and the
first eight passes (its levels and its jumps) wait for one fetch instead of eight.

A crown is each tree's nodes above depth CROWN_DEPTH in preorder, so a split's left child is
the next record as everywhere in the format, and at that depth a jump record in place of each
split: its threshold is NaN, so every walker goes right (``x <= NaN`` is false, and NaN goes
right with ``missing_left`` 0) to the split's own record in the tree below. The reader needs
nothing new, a walk costs one pass more, and the trees keep every record (their top levels
are no longer read). ``roots`` gives each tree's first crown record. Small trees (a boosting
model's: a few dozen leaves, a page or two each) get no crown: it would copy most of each
tree, nearly doubling the file, for pages their walks already share.
"""

from __future__ import annotations

import numpy as np

from bench.errors import UsageError
from bench.host.paths import service_module

CROWN_DEPTH = 7
# Crowns of more records than this share of the trees' are not worth their bytes (the 5.45 GB
# forest's are 0.7% of its records; a gradient-boosting model's trees lie mostly above depth 7).
MAX_CROWN_SHARE = 0.125


def crowned(nodes: np.ndarray, roots: np.ndarray, depth: int = CROWN_DEPTH
            ) -> tuple[np.ndarray, np.ndarray, int]:
    """The node records with every tree's crown appended, each tree's new first record and
    the crown's depth; the records unchanged and depth 0 where crowns do not pay."""
    leaf = service_module("flat_forest").LEAF
    right = nodes["right"]
    base = nodes.size
    source: list[int] = []  # the record each crown record copies (a jump: its target)
    right_at: list[int] = []  # crown position of a copied split's right child
    jumps: list[int] = []
    starts: list[int] = []
    for root in roots.tolist():
        starts.append(len(source))
        stack = [(root, 0, -1)]  # node, its depth, crown position of the split it is right of
        while stack:  # iterative preorder: the left child popped right after its parent
            node, level, parent_of_right = stack.pop()
            position = len(source)
            if parent_of_right >= 0:
                right_at[parent_of_right] = position
            source.append(node)
            right_at.append(-1)
            target = int(right[node])
            if target == leaf:
                continue
            if level == depth:
                jumps.append(position)
                continue
            stack.append((target, level + 1, position))
            stack.append((node + 1, level + 1, -1))
    if len(source) > MAX_CROWN_SHARE * base:
        return nodes, roots, 0
    if base + len(source) >= 2**31:
        raise UsageError(f"a model of {base + len(source)} node records does not fit int32 "
                         "node indices")
    copied = np.asarray(source, dtype=np.int64)
    crown = nodes[copied]
    splits = crown["right"] != leaf
    crown["right"][splits] = np.asarray(right_at, dtype=np.int64)[splits] + base
    jump = np.asarray(jumps, dtype=np.int64)
    crown["right"][jump] = copied[jump]
    crown["value"][jump] = np.nan
    crown["feature"][jump] = 0
    crown["missing_left"][jump] = 0
    return np.concatenate([nodes, crown]), base + np.asarray(starts, dtype=np.int64), depth
