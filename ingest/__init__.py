"""The ingestion pipeline: source -> parser -> chunker -> batcher -> provider -> store."""
