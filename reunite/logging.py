"""Structured logging: key=value pairs for people, one JSON object per line for collectors."""

from __future__ import annotations

import json
import logging
import sys
import time

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class _StructuredFormatter(logging.Formatter):
    def __init__(self, as_json: bool) -> None:
        super().__init__()
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in record.__dict__.items() if k not in _RESERVED}
        if self.as_json:
            payload = {
                "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
                "level": record.levelname.lower(),
                "logger": record.name,
                "msg": record.getMessage(),
                **fields,
            }
            return json.dumps(payload, default=str, ensure_ascii=False)
        extras = " ".join(f"{k}={v}" for k, v in fields.items())
        line = f"{record.levelname.lower():7s} {record.name}: {record.getMessage()}"
        return f"{line} {extras}" if extras else line


def configure_logging(level: str = "INFO", as_json: bool = False) -> None:
    """Send structured records to stderr; pass context with ``log.info("msg", extra={...})``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_StructuredFormatter(as_json))
    root = logging.getLogger("reunite")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
