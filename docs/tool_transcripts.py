"""Transcripts of searchsvc using tools and offering them, with a scripted chat model (the test suite's fake
OpenAI server) over sample_data/markdown, so anyone can replay them without a key:

1. an agentic ``/v1/ask``: the model searches twice, then answers citing a passage only the second search
   found (the stream's events in order);
2. the Responses API with ``file_search`` and a caller's ``get_weather`` function, through the official
   ``openai`` SDK: the function call comes back, its output goes in with ``previous_response_id``, and the
   answer cites the vector store's file.

    python docs/tool_transcripts.py

``tests/test_tool_transcripts.py`` runs it and checks the transcript.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
from openai import OpenAI

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import MODEL, cli_env, remote_settings  # noqa: E402  (the fake and its settings)
from tests.fake_chat import ToolCalls  # noqa: E402
from tests.fake_openai import FakeOpenAI  # noqa: E402
from tests.servers import serving  # noqa: E402

SEARCHES = ({"query": "install pyenv with Homebrew", "k": 3}, {"query": "pyenv shell startup zshrc", "k": 3})
WEATHER: Any = {"type": "function", "name": "get_weather", "description": "Today's weather in a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}  # fmt: skip


def agent_model(messages: list[dict[str, Any]]) -> Any:
    """Two searches, then an answer citing one passage of each."""
    done = sum(1 for m in messages if m["role"] == "tool")
    if done < len(SEARCHES):
        return ToolCalls([("search", SEARCHES[done])])
    return "Install it with brew install pyenv [1], then add pyenv init to your shell startup file [4]."


def weather_model(messages: list[dict[str, Any]]) -> Any:
    if messages[-1]["role"] == "tool":
        return f"It is {messages[-1]['content']}; pyenv installs with Homebrew either way [1]."
    return ToolCalls([("get_weather", {"city": "Lisbon"})])


def agentic(native: str) -> None:
    print("## 1. agentic /v1/ask, streamed")
    body = {"question": "How do I install pyenv and set up my shell?", "collection": "docs", "agentic": True,
            "stream": True}  # fmt: skip
    with httpx.stream("POST", f"{native}/v1/ask", json=body, timeout=120) as response:
        text = response.read().decode()
    answer = []
    for name, data in re.findall(r"event: (\w+)\ndata: (.*)\n\n", text):
        event = json.loads(data)
        if name == "tool_call":
            print(f"event tool_call   → {event['name']}({event['arguments']})")
        elif name == "tool_result":
            print(f"event tool_result ← {event['name']}: sources {[s['number'] for s in event['sources']]}")
        elif name == "delta":
            answer.append(event["text"])
        elif name == "done":
            print(f"event delta       {''.join(answer)}")
            for cited in event["citations"]:
                print(f"  [{cited['number']}] {cited['location'].replace(f'{ROOT}/', '')}")
            print(f"event done        agent={event['agent']} usage={event['usage']}")
        elif name == "sources":
            print(f"event sources     {len(event['sources'])} passages found in all")


def responses(client: OpenAI, data: Path) -> None:
    print("## 2. responses.create with file_search and a function tool")
    uploaded = client.files.create(file=(data / "pyenv" / "README.md").open("rb"), purpose="assistants")
    store = client.vector_stores.create(name="pyenv")
    client.vector_stores.files.create_and_poll(file_id=uploaded.id, vector_store_id=store.id)
    tools: Any = [{"type": "file_search", "vector_store_ids": [store.id]}, WEATHER]
    first = client.responses.create(
        model="gpt-4o-mini", input="Is today a good day to install pyenv with Homebrew?", tools=tools
    )
    for item in first.output:
        print(f"{first.id} output: {item.type}" + (f" {item.name}({item.arguments}) call_id={item.call_id}"
                                                   if item.type == "function_call" else ""))  # fmt: skip
    call = next(item for item in first.output if item.type == "function_call")
    second = client.responses.create(model="gpt-4o-mini", previous_response_id=first.id, tools=tools,
                                     input=[{"type": "function_call_output", "call_id": call.call_id,
                                             "output": "sunny"}])  # fmt: skip
    notes = second.output[-1].content[0].annotations
    print(f"{second.id} output_text: {second.output_text}")
    print(f"  annotations: {[(n.type, n.filename) for n in notes]}")


def main() -> None:
    data = ROOT / "sample_data" / "markdown"
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI() as fake:
        env = cli_env(remote_settings(Path(tmp), fake, embedding_model=MODEL), fake)
        command = [sys.executable, "-m", "searchsvc", "ingest", "sample_data/markdown", "-c", "docs"]
        subprocess.run(command, env=env, cwd=ROOT, check=True, capture_output=True)
        with serving(env) as url:
            fake.chat_reply = agent_model
            agentic(url.removesuffix("/v1"))
            fake.chat_reply = weather_model
            responses(OpenAI(base_url=url, api_key="unused", max_retries=0), data)


if __name__ == "__main__":
    main()
