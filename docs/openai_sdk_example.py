"""The official OpenAI Python SDK against searchsvc, unchanged but for ``base_url``: upload sample_data into a
vector store, search it with a compound filter, answer from it with citations (streamed and not), embed
with the model its search uses, delete a file and see it gone.

    searchsvc serve --port 8000 &
    pip install openai
    python docs/openai_sdk_example.py --base-url http://127.0.0.1:8000/v1

``tests/test_sdk_example.py`` runs it against a real server on the Markdown part of sample_data.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from openai import OpenAI

SUFFIXES = {".md", ".txt", ".html", ".pdf"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1", help="searchsvc's /v1 URL")
    parser.add_argument("--data", type=Path, default=Path("sample_data"), help="folder of files to upload")
    args = parser.parse_args()
    client = OpenAI(base_url=args.base_url, api_key=os.environ.get("SEARCHSVC_KEY", "unused"))

    # 1. Upload every file, then add them to a new vector store in one batch, each tagged with its project.
    paths = sorted(p for p in args.data.rglob("*") if p.suffix in SUFFIXES and ".licenses" not in p.parts)
    uploaded = {path: client.files.create(file=path.open("rb"), purpose="assistants") for path in paths}
    store = client.vector_stores.create(name="sample_data")
    tagged = [
        {"file_id": f.id, "attributes": {"project": p.parent.name, "kind": p.suffix[1:]}} for p, f in uploaded.items()
    ]
    batch = client.vector_stores.file_batches.create_and_poll(vector_store_id=store.id, files=tagged)
    print(f"store {store.id}: batch {batch.status}, {batch.file_counts.completed} of {len(paths)} files in")

    # 2. Search, then search one project's Markdown only (a compound filter over the attributes).
    for hit in client.vector_stores.search(store.id, query="install pyenv with Homebrew", max_num_results=3):
        print(f"  {hit.score:.3f} {hit.filename} {hit.attributes}")
    only_redis = {"type": "and", "filters": [{"type": "eq", "key": "project", "value": "redis"},
                                             {"type": "in", "key": "kind", "value": ["md"]}]}  # fmt: skip
    redis_hits = client.vector_stores.search(store.id, query="persistence to disk", filters=only_redis)
    print(f"redis only: {sorted({h.attributes['project'] for h in redis_hits})}")

    # 3. Change a file's attributes: the filter sees it at once, nothing is embedded again.
    readme = next(f for p, f in uploaded.items() if p.parent.name == "redis")
    client.vector_stores.files.update(file_id=readme.id, vector_store_id=store.id, attributes={"project": "kv"})
    moved = client.vector_stores.search(store.id, query="persistence to disk",
                                        filters={"type": "eq", "key": "project", "value": "kv"})  # fmt: skip
    print(f"retagged: {sorted({h.filename for h in moved})}")

    # 4. Answer from the store: rag:<store id> is a chat model (extractive without a chat API).
    print("models:", [m.id for m in client.models.list() if m.id == f"rag:{store.id}"])
    question = [{"role": "user", "content": "How do I install pyenv with Homebrew?"}]
    answer = client.chat.completions.create(model=f"rag:{store.id}", messages=question)
    print(answer.choices[0].message.content)
    for note in answer.choices[0].message.model_dump(exclude_none=True)["annotations"]:
        print(f"  [{note['file_citation']['source']}] {note['file_citation']['filename']}")
    stream = client.chat.completions.create(model=f"rag:{store.id}", messages=question, stream=True)
    streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    print(f"streamed the same answer: {streamed == answer.choices[0].message.content}")

    # 5. Embed with the model the store's search uses.
    vectors = client.embeddings.create(model=store.id, input=["install pyenv with Homebrew"])
    print(f"embedding: {len(vectors.data[0].embedding)} dimensions, {vectors.usage.total_tokens} tokens")

    # 6. Delete a file: it is gone from every store's search; then the store.
    client.files.delete(readme.id)
    after = client.vector_stores.search(store.id, query="persistence to disk", max_num_results=50)
    print(f"after delete, {readme.id} found: {any(h.file_id == readme.id for h in after)}")
    print(f"store deleted: {client.vector_stores.delete(store.id).deleted}")


if __name__ == "__main__":
    main()
