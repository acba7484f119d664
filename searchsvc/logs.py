"""Structured (JSON) logs for the service."""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra fields passed with ``extra={"fields": {...}}``."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": os.getpid(),
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """``logging.config.dictConfig`` for the server: searchsvc's and uvicorn's loggers write JSON lines on stderr.

    Given to uvicorn as ``log_config``, it is applied in every worker process too.
    """
    json_handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    quiet = {"handlers": ["json"], "level": "WARNING", "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "searchsvc.logs.JsonFormatter"}},
        "handlers": {"json": json_handler},
        "loggers": {
            "searchsvc": {"handlers": ["json"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["json"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"handlers": ["json"], "level": "INFO", "propagate": False},
            "uvicorn.access": quiet,  # one line per request comes from searchsvc.api instead
        },
    }


def configure_json_logging(level: int = logging.INFO) -> None:
    """JSON logs in this process (the server, each of its workers)."""
    import logging.config

    logging.config.dictConfig(logging_config(logging.getLevelName(level)))
