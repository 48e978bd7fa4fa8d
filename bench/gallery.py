"""Gallery query latency and build throughput.

Query: top-10 of one unit 512-d vector against N unit vectors (N = 1k, 100k, 1M), exact search in
torch: one fp32 matmul (what ``Gallery`` does below ``INDEX_MIN_ROWS``), fp16 / bf16 storage, fp32 in
chunks; and, when FAISS is installed, the inverted-file index of ``model.gallery.vector_search`` (what ``Gallery``
does from ``INDEX_MIN_ROWS`` on): its build time, query time and recall@10 against the exact top 10, over
``--repeats`` different queries. Two kinds of gallery: random unit vectors (no structure: the worst case
for any index) and clustered ones (1,000 centres, each vector its centre plus noise of 1.36x its norm, the
query a new such vector: like clips of 1,000 kinds). Build: clips/s of ``build_gallery`` on a folder of
real clips (default: the bundled demo clips) with the bundled model.

Usage: python bench/gallery.py [--sizes 1000 100000 1000000] [--repeats 30] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_encoders import median_ms  # noqa: E402  (bench/, the folder of this script)

from model import load_model  # noqa: E402
from model.gallery.index import build_gallery  # noqa: E402
from model.gallery.vector_search import VectorSearch, faiss_available  # noqa: E402

K = 10
CLUSTERS, NOISE = 1000, 0.06  # noise per dimension: norm 0.06 * sqrt(512) = 1.36 around a unit centre


def top_k_chunked(bank: torch.Tensor, query: torch.Tensor, k: int, chunk: int = 131072):
    """Exact top-k over row chunks: a small working set instead of one N-long score vector."""
    best_v, best_i = [], []
    for start in range(0, len(bank), chunk):
        v, i = (bank[start:start + chunk] @ query).topk(min(k, len(bank) - start))
        best_v.append(v)
        best_i.append(i + start)
    v, order = torch.cat(best_v).topk(k)
    return v, torch.cat(best_i)[order]


def gallery_vectors(n: int, kind: str, queries: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 512) unit gallery vectors and (queries, 512) unit queries, random or clustered (module doc)."""
    if kind == "random":
        return F.normalize(torch.randn(n, 512), dim=1), F.normalize(torch.randn(queries, 512), dim=1)
    centres = F.normalize(torch.randn(CLUSTERS, 512), dim=1)
    bank = torch.empty(n, 512)
    for start in range(0, n, 131072):  # in chunks: no second n x 512 temporary
        rows = min(131072, n - start)
        bank[start:start + rows] = centres[torch.randint(CLUSTERS, (rows,))] + NOISE * torch.randn(rows, 512)
    queries = centres[torch.randint(CLUSTERS, (queries,))] + NOISE * torch.randn(queries, 512)
    return F.normalize(bank, dim=1), F.normalize(queries, dim=1)


def index_row(bank: torch.Tensor, queries: torch.Tensor, repeats: int) -> dict:
    """Build time, median query time and mean recall@10 of ``model.gallery.vector_search``'s FAISS index."""
    start = time.perf_counter()
    search = VectorSearch(bank, index=True)
    build_s = time.perf_counter() - start
    times, recalls = [], []
    for query in queries[:repeats]:
        start = time.perf_counter()
        found = search.top_k(query, K)[1]
        times.append((time.perf_counter() - start) * 1000)
        recalls.append(len(set(found.tolist()) & set((bank @ query).topk(K).indices.tolist())) / K)
    return {"index_build_s": build_s, "index_ms": statistics.median(times),
            "index_recall_at_10": sum(recalls) / len(recalls)}


def query_latencies(sizes: list[int], repeats: int, kind: str) -> dict:
    torch.manual_seed(0)
    results = {}
    for n in sizes:
        bank, queries = gallery_vectors(n, kind, max(repeats, 1))
        query = queries[0]
        exact = (bank @ query).topk(K).indices
        row = {"fp32_ms": median_ms(lambda: (bank @ query).topk(K), repeats)}
        for name, dtype in (("fp16", torch.float16), ("bf16", torch.bfloat16)):
            low, q = bank.to(dtype), query.to(dtype)
            row[f"{name}_ms"] = median_ms(lambda: (low @ q).topk(K), repeats)
            found = (low @ q).topk(K).indices
            row[f"{name}_recall_at_10"] = len(set(found.tolist()) & set(exact.tolist())) / K
        row["fp32_chunked_ms"] = median_ms(lambda: top_k_chunked(bank, query, K), repeats)
        if faiss_available():
            row.update(index_row(bank, queries, repeats))
        results[str(n)] = {key: round(value, 3) for key, value in row.items()}
        bank = low = None  # freed before the next size is allocated
    return results


def build_throughput(folder: Path, checkpoint: Path) -> dict:
    model = load_model(checkpoint, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:  # a copy: no index next to the clips, nothing reused
        copy = Path(tmp) / "gallery"
        shutil.copytree(folder, copy, ignore=shutil.ignore_patterns(".ssl_gallery*"))
        start = time.perf_counter()
        gallery = build_gallery(copy, model)
        seconds = time.perf_counter() - start
    return {"clips": len(gallery), "seconds": round(seconds, 2), "clips_per_s": round(len(gallery) / seconds, 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--folder", type=Path, default=ROOT / "resources" / "demo")
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "resources" / "model.safetensors")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(),
              "query_top10": query_latencies(args.sizes, args.repeats, "random"),
              "query_top10_clustered": query_latencies(args.sizes, args.repeats, "clustered"),
              "build": build_throughput(args.folder, args.checkpoint)}
    print(f"torch {result['torch']}, {result['threads']} threads; top-{K} query, median of {args.repeats}")
    for key in ("query_top10", "query_top10_clustered"):
        print(f"{key}\n{'N':>9} {'fp32':>9} {'fp16':>9} {'bf16':>9} {'chunked':>9}  recall@10 fp16/bf16"
              "   index: build, query, recall@10")
        for n, row in result[key].items():
            index = (f"   {row['index_build_s']:.1f} s, {row['index_ms']:.2f} ms, {row['index_recall_at_10']:.3f}"
                     if "index_ms" in row else "   (FAISS not installed)")
            print(f"{n:>9} {row['fp32_ms']:8.2f}m {row['fp16_ms']:8.2f}m {row['bf16_ms']:8.2f}m "
                  f"{row['fp32_chunked_ms']:8.2f}m  {row['fp16_recall_at_10']:.1f}/{row['bf16_recall_at_10']:.1f}"
                  + index)
    build = result["build"]
    print(f"build: {build['clips']} clips in {build['seconds']} s = {build['clips_per_s']} clips/s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
