"""Overlap the stages of an ingest: decode ahead of detection, embed and store behind it.

One camera's ingest is a chain: decode a frame, detect and track, and per chunk embed the kept
crops and commit them. On a 2-core machine the stages leave cores idle when run one after the
other (JPEG decoding, OpenCV's background model, ONNX Runtime / OpenVINO and SQLite all release
the GIL), so two helpers run them side by side:

* ``prefetch``: a reader thread keeps a few decoded frames ready;
* ``ChunkWriter``: one writer thread embeds and stores chunk N while the caller tracks chunk
  N + 1. Chunks are written in order, one at a time, and at most one waits, so memory stays
  bounded and the exact-resume property holds: a chunk's result depends only on its frames and
  the checkpoint before it, whichever thread computes it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


def prefetch(items: Iterator[T], depth: int) -> Iterator[T]:
    """Yield ``items`` as they come, read by a background thread up to ``depth`` ahead.

    An exception in the reader is raised here, at the position it happened. Closing the
    generator (or dropping it) stops the reader after at most one more item. ``depth`` 0 reads
    in the caller's thread.
    """
    if depth <= 0:
        yield from items
        return
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def read() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put((_DONE, None))
        except BaseException as error:  # handed to the consumer
            buffer.put((_DONE, error))

    reader = threading.Thread(target=read, name="ingest-reader", daemon=True)
    reader.start()
    try:
        while True:
            item, error = buffer.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        for _ in range(40):  # up to 2 s; a reader stuck in a stalled stream is left (daemon)
            try:
                buffer.get_nowait()  # let a blocked put see the stop flag
            except queue.Empty:
                reader.join(timeout=0.05)
            if not reader.is_alive():
                break


class ChunkWriter:
    """Runs each chunk's write (embed, store) on one background thread, in submission order.

    ``submit`` first waits for the previous chunk (re-raising its error, so the caller stops
    tracking when a write failed) and then queues this one; ``close`` waits for the last. With
    ``pipelined=False`` every write runs inline, as a plain sequential loop would.
    """

    def __init__(self, pipelined: bool = True) -> None:
        self._pool = (
            ThreadPoolExecutor(1, thread_name_prefix="ingest-writer") if pipelined else None
        )
        self._pending: Future | None = None

    def submit(self, write: Callable[[], None]) -> None:
        if self._pool is None:
            write()
            return
        self.wait()
        self._pending = self._pool.submit(write)

    def wait(self) -> None:
        """Block until the queued chunk is written; raise its error if it failed."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
