"""Ingestion as jobs: created over HTTP or the CLI, kept in SQL (``ingest_jobs``), run by a server's own
bounded pool (``runner``), watched through their counts and heartbeat.

A job's state lives only in SQL, so it survives restarts: a job whose runner stops heartbeating is
resumed by any other runner on the same database (ingestion is idempotent: what was committed is
recognised as unchanged, what was embedded comes from the embedding cache)."""
