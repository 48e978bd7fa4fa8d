"""Top-k search by inner product over unit vectors: exact in torch, or a FAISS inverted-file index for
large galleries.

Exact search reads every vector at every query: 36 ms for 100k and 310 ms for 1M 512-d vectors on the
2-core CPU of docs/BENCHMARKS.md (memory-bound). From ``INDEX_MIN_ROWS`` rows on, when ``faiss`` is
installed (the ``index`` extra, which ``make`` installs), the vectors are also put in an inverted-file
index: k-means cells, of which a query reads the ``PROBES`` nearest. Its answers are approximate: on
vectors that cluster (as embeddings of clips do, by what they show and sound like) it finds the exact top
10; on structureless random vectors no index can (bench/gallery.py measures both).
"""
from __future__ import annotations

import importlib.util
import math

import numpy as np
import torch

INDEX_MIN_ROWS = 50_000
PROBES = 32  # cells read per query
TRAIN_PER_CELL = 64  # k-means training vectors per cell (at most all rows)


def faiss_available() -> bool:
    return importlib.util.find_spec("faiss") is not None


class VectorSearch:
    """The top k of ``vectors @ query`` for unit ``vectors`` (N, D) float32 on the CPU.

    ``index``: None builds the FAISS index when there are at least ``INDEX_MIN_ROWS`` rows and FAISS is
    installed, True always (an ImportError without FAISS), False never. Building it takes a while (about a
    minute for 1M vectors here): construct this where the gallery is built or loaded, not in the GUI thread.
    """

    def __init__(self, vectors: torch.Tensor, index: bool | None = None, seed: int = 0):
        self.vectors = vectors
        if index is None:
            index = len(vectors) >= INDEX_MIN_ROWS and faiss_available()
        self._index = inverted_file_index(vectors.numpy(), seed) if index and len(vectors) else None

    @property
    def approximate(self) -> bool:
        return self._index is not None

    def top_k(self, query: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(values, rows) of the ``min(k, N)`` best rows for a query (D,), best first."""
        k = min(k, len(self.vectors))
        if self._index is None:
            return (self.vectors @ query).topk(k)
        values, rows = self._index.search(query.reshape(1, -1).numpy(), k)
        found = rows[0] >= 0  # -1: fewer than k vectors in the cells read
        return torch.from_numpy(values[0][found]), torch.from_numpy(rows[0][found])


def inverted_file_index(vectors: np.ndarray, seed: int = 0):
    """A FAISS IVF-Flat inner-product index of ``vectors`` (N, D): 4 sqrt(N) cells (FAISS's guidance is
    4-16 sqrt(N)), trained on ``TRAIN_PER_CELL`` vectors per cell, ``PROBES`` cells read per query."""
    import faiss

    n, dim = vectors.shape
    cells = max(1, min(n // TRAIN_PER_CELL, round(4 * math.sqrt(n))))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, cells, faiss.METRIC_INNER_PRODUCT)
    sample = np.random.default_rng(seed).choice(n, min(n, cells * TRAIN_PER_CELL), replace=False)
    index.train(np.ascontiguousarray(vectors[np.sort(sample)]))
    index.add(np.ascontiguousarray(vectors))
    index.nprobe = min(PROBES, cells)
    return index
