"""Storage: SQL (source of truth) and the per-collection vector index (derived data)."""
