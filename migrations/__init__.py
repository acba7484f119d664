"""Alembic migrations, installed as searchsvc.migrations (see pyproject.toml)."""
