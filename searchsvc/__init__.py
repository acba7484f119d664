"""searchsvc: semantic search and retrieval-augmented answers over your documents."""

__version__ = "0.1.0"
