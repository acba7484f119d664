"""What routes get injected: the services built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from searchsvc.config import Settings
from searchsvc.providers import EmbedderRegistry
from searchsvc.providers.base import EmbeddingProvider
from searchsvc.providers.chat import ChatProvider
from searchsvc.store import Store


@dataclass
class Services:
    settings: Settings
    store: Store
    embedders: EmbedderRegistry
    chat: ChatProvider | None

    def embedder_for(self, collection_name: str) -> EmbeddingProvider:
        return self.embedders.get(self.store.get_collection(collection_name).embedding_model)

    def collection_name(self, requested: str | None) -> str:
        return requested or self.settings.collection


def services(request: Request) -> Services:
    return request.app.state.services


SvcDep = Annotated[Services, Depends(services)]
