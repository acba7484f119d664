"""POST /v1/ask and conversations."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from searchsvc.answer import Answerer, AskRequest
from searchsvc.api.auth import require_read, require_write
from searchsvc.api.deps import Services, SvcDep
from searchsvc.api.schemas import AskBody
from searchsvc.errors import NotFoundError, SearchsvcError
from searchsvc.storage import conversations
from searchsvc.storage.schema import Conversation

router = APIRouter(prefix="/v1", tags=["answers"])


def _answerer(svc: Services, collection: str) -> Answerer:
    return Answerer(svc.store, svc.embedder_for(collection), svc.chat, svc.settings)


@router.post("/ask", dependencies=[Depends(require_read)], summary="Answer a question with numbered citations")
async def ask(body: AskBody, svc: SvcDep) -> Any:
    request = AskRequest(
        question=body.question,
        collection=svc.collection_name(body.collection),
        k=body.k,
        filter=body.filter,
        min_score=body.min_score,
        params=body.generation_params(),
        models=body.models,
        conversation_id=body.conversation_id,
        model=body.model,
        mode=body.mode,
    )
    answerer = await run_in_threadpool(_answerer, svc, request.collection)
    if not body.stream:
        return await run_in_threadpool(answerer.answer, request)
    return StreamingResponse(
        _sse(answerer.stream(request)),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


def _sse(events: Iterator[tuple[str, dict[str, Any]]]) -> Iterator[str]:
    """Server-sent events; an error after the stream started is sent as an ``error`` event."""
    try:
        for name, data in events:
            yield f"event: {name}\ndata: {json.dumps(data, default=str)}\n\n"
    except SearchsvcError as exc:
        yield f"event: error\ndata: {json.dumps({'error': {'code': exc.code, 'message': str(exc)}})}\n\n"


@router.get("/conversations/{conversation_id}", dependencies=[Depends(require_read)], summary="A conversation")
async def get_conversation(conversation_id: str, svc: SvcDep) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        with svc.store.session() as session:
            conversation = session.get(Conversation, conversation_id)
            if conversation is None:
                raise NotFoundError(f"no conversation {conversation_id!r}")
            turns = conversations.messages(session, conversation_id)
            return {
                "id": conversation.id,
                "collection": conversation.collection,
                "messages": [
                    {
                        "role": m.role,
                        "content": m.content,
                        "standalone_query": m.standalone_query,
                        "citations": m.citations,
                        "created_at": m.created_at,
                    }
                    for m in turns
                ],
            }

    return await run_in_threadpool(run)


@router.delete(
    "/conversations/{conversation_id}", dependencies=[Depends(require_write)], summary="Delete a conversation"
)
async def delete_conversation(conversation_id: str, svc: SvcDep) -> dict[str, Any]:
    def run() -> None:
        with svc.store.session() as session:
            conversation = session.get(Conversation, conversation_id)
            if conversation is None:
                raise NotFoundError(f"no conversation {conversation_id!r}")
            session.delete(conversation)
            session.commit()

    await run_in_threadpool(run)
    return {"deleted": conversation_id}
