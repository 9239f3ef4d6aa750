"""What the API holds for its lifetime: the workspace, the embedding model, the token key and the
rate limiters. One per app; routes reach it through ``request.app.state.service``."""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections import defaultdict, deque
from pathlib import Path

from fastapi import Request

from reunite.api.problems import RateLimitedError
from reunite.config import Settings
from reunite.pipeline.detection import PersonDetector
from reunite.pipeline.embedding_model import EmbeddingModel, load_embedding_model
from reunite.pipeline.search import active_model
from reunite.pipeline.workspace import Workspace


class RateLimiter:
    """At most ``limit`` events per key in any sliding ``window_s``.

    In process memory, written here rather than taken from a library: one server process is the
    deployment this serves, and the window of timestamps is a dozen lines; several workers behind
    a balancer would share a limiter in Redis instead.
    """

    def __init__(self, limit: int, window_s: float = 60.0) -> None:
        self.limit, self.window_s = limit, window_s
        self._events: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def check(self, key: str, what: str) -> None:
        """Raise ``RateLimitedError`` if ``key`` used up its events in the window."""
        now = time.monotonic()
        with self._lock:
            events = self._events[key]
            while events and events[0] <= now - self.window_s:
                events.popleft()
            if len(events) >= self.limit:
                retry = int(events[0] + self.window_s - now) + 1
                raise RateLimitedError(
                    f"too many {what}: at most {self.limit} a minute; try again in {retry} s",
                    retry,
                )

    def add(self, key: str) -> None:
        with self._lock:
            self._events[key].append(time.monotonic())

    def hit(self, key: str, what: str) -> None:
        """Check, then count this event."""
        self.check(key, what)
        self.add(key)


class Service:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ws = Workspace.open(settings)
        self.token_key = _token_key(settings)
        self.login_limiter = RateLimiter(settings.login_per_minute)
        self.search_limiter = RateLimiter(settings.search_per_minute)
        self._model: EmbeddingModel | None = None
        self._model_lock = threading.Lock()
        self.detector: PersonDetector | None = None
        if settings.person_detector is not None:
            from reunite.pipeline.detectors import detector_factory

            self.detector = detector_factory(str(settings.person_detector))()

    @property
    def max_upload_bytes(self) -> int:
        return int(self.settings.max_upload_mb * 2**20)

    @property
    def max_upload_pixels(self) -> int:
        return int(self.settings.max_upload_megapixels * 1e6)

    def model(self) -> EmbeddingModel:
        """The active index's model (the shipped one before any footage): photos and sightings
        must be embedded alike. Reloaded when a reindex switched the active version."""
        version = self.ws.active_version()
        wanted = version.model if version is not None else None
        with self._model_lock:
            if self._model is None or (wanted is not None and self._model.version != wanted):
                self._model = (
                    active_model(self.ws)
                    if version is not None
                    else load_embedding_model("default", data_dir=self.ws.data_dir)
                )
            return self._model

    def close(self) -> None:
        self.ws.close()


def _token_key(settings: Settings) -> bytes:
    """The configured key, or a random one made once and kept beside the database (0600), so
    tokens survive a restart but every installation has its own."""
    if settings.api_secret is not None and settings.api_secret.get_secret_value():
        return settings.api_secret.get_secret_value().encode()
    path = Path(settings.data_dir) / "api_secret"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def service(request: Request) -> Service:
    return request.app.state.service
