"""The providers of a process that answers queries, wired to its store: query vectors kept in SQL for
every process, and every embedding and chat call recorded in the token ledger."""

from __future__ import annotations

from dataclasses import dataclass

from searchsvc.config import Settings
from searchsvc.providers import EmbedderRegistry, make_chat_provider
from searchsvc.providers.chat import ChatProvider
from searchsvc.storage.rate_budget import AdaptivePacer, budget_key
from searchsvc.storage.usage_ledger import SqlLedger
from searchsvc.store import Store


def _chat_pacer(settings: Settings, store: Store, chat: ChatProvider) -> AdaptivePacer:
    """The chat API's limits, configured or learned from its headers, shared by every process; a 429 holds all."""
    client = chat.client
    configured = (settings.chat_tokens_per_minute, settings.chat_requests_per_minute)
    pacer = AdaptivePacer(store.session, budget_key(f"chat at {client.base_url}"), configured, lambda: client.learned)
    client.on_throttled = pacer.pause
    return pacer


@dataclass
class QueryProviders:
    embedders: EmbedderRegistry
    chat: ChatProvider | None
    ledger: SqlLedger

    @classmethod
    def open(cls, settings: Settings, store: Store, chat: bool = True) -> QueryProviders:
        ledger = store.usage_ledger()
        embedders = EmbedderRegistry(settings, store.query_shelf(settings.query_cache_rows), ledger)
        chat_provider = make_chat_provider(settings) if chat else None
        if chat_provider is not None:
            chat_provider.ledger = ledger
            chat_provider.pacer = _chat_pacer(settings, store, chat_provider)
        return cls(embedders, chat_provider, ledger)

    def close(self) -> None:
        """Providers first, then the ledger (which writes what they recorded); the store is the caller's."""
        self.embedders.close()
        if self.chat is not None:
            self.chat.close()
        self.ledger.close()
