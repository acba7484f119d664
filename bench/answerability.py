"""When should an answer be "I don't know"? Calibrate on questions written for sample_data, report the rates.

    python bench/answerability.py [--questions tests/fixtures/answerability.jsonl] [--json]

The set (tests/fixtures/answerability.jsonl) holds 40 answerable questions, each with the document
that answers it, and 40 unanswerable ones (20 off topic, 20 near topic: software questions these
documents do not answer). sample_data is ingested with the local model; every question is retrieved
once (hybrid, k=8, no floor) and two numbers are kept: the best chunk's cosine to the question (the
gate of every answer: below ``answer_min_score`` nothing is sent to a model) and the best prose
sentence's cosine (extractive answers also need ``extractive_min_score``).

Thresholds are chosen on the odd-numbered questions (tuning half: maximise correct refusals minus
wrong refusals, ties to the lower threshold) and reported on the even-numbered ones (held out) and on
all. Then the real answer path runs every question, with searchsvc's shipped defaults for the model
(config.CALIBRATED_FLOORS) and with the tuned pair, in both modes: extractive (no chat model) and
generative with the tests' fake chat model (which always answers, so only the gate can refuse). A
"right answer" cites the expected document.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ingest.runs import ingest_path  # noqa: E402
from searchsvc.answering import Answerer, AnswerSource, AskRequest  # noqa: E402
from searchsvc.answering.extractive import extract  # noqa: E402
from searchsvc.config import Settings  # noqa: E402
from searchsvc.providers.chat import ChatProvider  # noqa: E402
from searchsvc.providers.http_client import OpenAICompatibleClient  # noqa: E402
from searchsvc.providers.local import LocalEmbeddingProvider  # noqa: E402
from searchsvc.search import search  # noqa: E402
from searchsvc.store import Store  # noqa: E402
from tests.fake_openai import FakeOpenAI  # noqa: E402

GRID = [round(0.05 * i, 2) for i in range(0, 14)]  # 0.00 .. 0.65


def features(store: Store, embedder: LocalEmbeddingProvider, question: str) -> tuple[float, float]:
    """(best chunk cosine, best prose sentence cosine) over the hybrid top 8, no floor."""
    hits = search(store, embedder, "sample", question, k=8, min_score=-1).hits
    top = max((h.vector_score for h in hits if h.vector_score is not None), default=-1.0)
    found = extract(embedder, question, [AnswerSource(i + 1, h) for i, h in enumerate(hits)])
    return top, found.best_score if found else -1.0


def rates(rows: list[dict], gate: float, sentence: float | None) -> dict[str, float]:
    """Correct refusals (unanswerable refused) and wrong refusals (answerable refused), as fractions."""

    def refused(row: dict) -> bool:
        return row["top"] < gate or (sentence is not None and row["sentence"] < sentence)

    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    return {
        "correct_refusals": sum(map(refused, unanswerable)) / len(unanswerable),
        "wrong_refusals": sum(map(refused, answerable)) / len(answerable),
    }


def calibrate(rows: list[dict]) -> tuple[float, float]:
    """The gate first (it alone decides generative answers), then the extractive sentence threshold given
    that gate; each maximises correct minus wrong refusals on ``rows``, ties going to the lower value."""

    def youden(gate: float, sentence: float | None) -> tuple[float, float]:
        found = rates(rows, gate, sentence)
        return found["correct_refusals"] - found["wrong_refusals"], -(sentence if sentence is not None else gate)

    gate = max(GRID, key=lambda g: youden(g, None))
    return gate, max(GRID, key=lambda s: youden(gate, s))


def answer_all(settings: Settings, store: Store, embedder, chat, questions: list[dict]) -> list[dict]:  # type: ignore[no-untyped-def]
    answerer = Answerer(store, embedder, chat, settings)
    results = []
    for q in questions:
        reply = answerer.answer(AskRequest(question=q["question"], collection="sample", k=8)).as_dict()
        cited = {c["document_key"] for c in reply.get("citations", [])}
        right = bool(q["answerable"]) and reply["answered"] and any(k.endswith(q.get("document", "?")) for k in cited)
        results.append({"id": q["id"], "answerable": q["answerable"], "answered": reply["answered"], "right": right})
    return results


def summary(results: list[dict]) -> dict[str, float]:
    answerable = [r for r in results if r["answerable"]]
    unanswerable = [r for r in results if not r["answerable"]]
    return {
        "correct_refusals": sum(not r["answered"] for r in unanswerable) / len(unanswerable),
        "wrong_refusals": sum(not r["answered"] for r in answerable) / len(answerable),
        "right_document": sum(r["right"] for r in answerable) / len(answerable),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=Path, default=REPO / "tests/fixtures/answerability.jsonl")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    questions = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]
    tuning = [q for q in questions if int(q["id"][1:]) % 2 == 1]
    held_out = [q for q in questions if int(q["id"][1:]) % 2 == 0]
    embedder = LocalEmbeddingProvider()
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI() as server:
        settings = Settings(data_dir=Path(tmp), provider="local", api_key=None)
        store = Store(settings)
        ingest_path(store, embedder, REPO / "sample_data", "sample", chunk_tokens=256, chunk_overlap=32)
        rows = {}
        for q in questions:
            top, best_sentence = features(store, embedder, q["question"])
            rows[q["id"]] = {"answerable": q["answerable"], "top": top, "sentence": best_sentence}
        gate, sentence = calibrate([rows[q["id"]] for q in tuning])
        tuned = Settings(data_dir=Path(tmp), answer_min_score=gate, extractive_min_score=sentence)
        defaults = Settings(data_dir=Path(tmp))
        shipped = (defaults.answer_floor(embedder.model), defaults.extractive_floor(embedder.model))
        chat = ChatProvider(OpenAICompatibleClient(server.url, server.api_key, 10, 1), "fake-chat")
        modes = {
            "extractive, shipped defaults": answer_all(defaults, store, embedder, None, questions),
            f"extractive, gate {gate} + sentence floor {sentence}": answer_all(tuned, store, embedder, None, questions),
            "generative (fake model), shipped defaults": answer_all(defaults, store, embedder, chat, questions),
        }
        store.close()
    by_id = {q["id"]: q for q in questions}
    report = {"answer_min_score": gate, "extractive_min_score": sentence, "shipped_defaults": shipped, "modes": {}}
    for mode, results in modes.items():
        report["modes"][mode] = {
            split: summary([r for r in results if r["id"] in {q["id"] for q in part}])
            for split, part in (("tuning", tuning), ("held_out", held_out), ("all", questions))
        }
    report["features"] = {k: {**v, "question": by_id[k]["question"]} for k, v in rows.items()}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"chosen on the tuning half: answer_min_score {gate}, extractive_min_score {sentence}")
    print(
        f"searchsvc's defaults for {embedder.model}: answer_min_score {shipped[0]}, extractive_min_score {shipped[1]}"
    )
    print("| mode | split | correct refusals | wrong refusals | answered from the right document |")
    print("|---|---|---|---|---|")
    for mode, splits in report["modes"].items():
        for split, r in splits.items():
            rates_text = " | ".join(f"{r[k]:.0%}" for k in ("correct_refusals", "wrong_refusals", "right_document"))
            print(f"| {mode} | {split} | {rates_text} |")


if __name__ == "__main__":
    main()
