"""Remote ingestion efficiency: ingest the FastAPI docs against the tests' OpenAI-compatible server
with 200 ms latency per request and a tokens-per-minute limit; compare wall time with the ideal.

Runs: the limit configured (SEARCHSVC_TOKENS_PER_MINUTE); nothing configured, the limit learned from
the server's x-ratelimit-* headers (as OpenAI sends them); and a server that enforces the limit without
announcing it, nothing configured (its 429s, each holding every request off for its Retry-After).

    python bench/remote_ingest.py [--tpm 150000] [--latency 0.2] [--corpus ../shared/eval/docs_corpus/fastapi]

The ideal bound, computed in the same run from the tokens actually sent: the server's bucket starts
full (one minute of tokens), so T tokens cannot finish before (T - TPM) / (TPM / 60) seconds, plus one
request's latency. Baseline: the same ingest with no limit and no latency (pipeline overhead alone).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ingest.runs import ingest_path  # noqa: E402
from searchsvc.config import Settings  # noqa: E402
from searchsvc.providers import make_embedding_provider  # noqa: E402
from searchsvc.store import Store  # noqa: E402
from tests.fake_openai import FakeOpenAI  # noqa: E402


def ingest_once(
    corpus: Path, tpm: int | None, latency: float, client_tpm: int | None, announce: bool = True
) -> dict[str, float]:
    with FakeOpenAI(dimension=256) as server, tempfile.TemporaryDirectory() as tmp:
        server.latency, server.tokens_per_minute, server.announce_limits = latency, tpm, announce
        settings = Settings(
            data_dir=Path(tmp),
            provider="openai",
            base_url=server.url,
            api_key=server.api_key,
            embedding_model="fake-embed",
            tokens_per_minute=client_tpm,
            max_in_flight=4,
            batch_max_inputs=256,
            max_retries=8,
        )
        provider, store = make_embedding_provider(settings), Store(settings)
        try:
            started = time.monotonic()
            report = ingest_path(store, provider, corpus, "docs", chunk_tokens=512, chunk_overlap=64)
            wall = time.monotonic() - started
        finally:
            store.close()
            provider.close()
        return {
            "wall": wall,
            "tokens": report.tokens_embedded,
            "requests": report.embedding_requests,
            "refused": server.rate_limited,
            "docs": report.added,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tpm", type=int, default=150_000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared/eval/docs_corpus/fastapi")
    args = parser.parse_args()
    if not args.corpus.exists():
        raise SystemExit(f"{args.corpus} not found: pass --corpus (the shared FastAPI docs)")
    base = ingest_once(args.corpus, None, 0.0, None)
    print(f"cores: {os.cpu_count()}  corpus {args.corpus.name}: {base['docs']:.0f} docs, {base['tokens']:.0f} tokens; "
          f"server: {args.latency * 1000:.0f} ms per request, {args.tpm} tokens/min\n", flush=True)  # fmt: skip
    ideal = max(0.0, (base["tokens"] - args.tpm) / (args.tpm / 60)) + args.latency
    print("| run | wall s | requests | refused (429) | ratio vs ideal bound |")
    print("|---|---|---|---|---|")
    print(f"| ideal bound (limit + latency) | {ideal:.1f} | | | 1.00x |")
    _row("no limit, no latency (pipeline only)", base, ideal)
    runs = (
        ("client paces to the TPM limit it is configured with", args.tpm, True),
        ("nothing configured: the limit learned from the server's headers", None, True),
        ("nothing configured, the server says nothing: 429s pause every request", None, False),
    )
    for name, client_tpm, announce in runs:
        _row(name, ingest_once(args.corpus, args.tpm, args.latency, client_tpm, announce), ideal)


def _row(name: str, run: dict[str, float], ideal: float) -> None:
    print(f"| {name} | {run['wall']:.1f} | {run['requests']:.0f} | {run['refused']:.0f} | {run['wall'] / ideal:.2f}x |",
          flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
