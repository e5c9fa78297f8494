"""Uploads for the faults: a batch as fast as the API takes it, or paced over a span of time;
a watch on the queue; and the verdict every fault shares."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from tests.chaos.hosts import Cluster
from tests.faults.harness import PHOTOS


@dataclass
class Uploads:
    accepted: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # what a client saw instead of a 202
    longest_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def upload(api: httpx.Client, count: int, span_s: float = 0.0, threads: int = 8) -> Uploads:
    """Upload `count` photos from `threads` threads, spread evenly over `span_s` seconds (0:
    as fast as they are taken). A 503 is sent again after a pause, as its Retry-After asks;
    any other answer, and a request that times out or breaks, is an error."""
    uploads = Uploads()
    started = time.monotonic()

    def one(n: int) -> None:
        wait = started + span_s * n / count - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        for _ in range(20):
            t0 = time.monotonic()
            try:
                response = api.post(
                    "/jobs",
                    files={"image": (f"{n}.jpg", PHOTOS[n % len(PHOTOS)])},
                    data={"pipeline_id": "1"},
                )
            except httpx.TransportError as exc:
                with uploads.lock:
                    uploads.errors.append(f"upload {n}: {type(exc).__name__}")
                return
            finally:
                with uploads.lock:
                    uploads.longest_s = max(uploads.longest_s, time.monotonic() - t0)
            if response.status_code == 202:
                with uploads.lock:
                    uploads.accepted.append(response.json()["job_id"])
                return
            if response.status_code != 503:
                with uploads.lock:
                    uploads.errors.append(f"upload {n}: {response.status_code}")
                return
            time.sleep(0.5)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(count)))
    return uploads


class QueueWatch:
    """Notes, from another thread, when the jobs' queues are first found empty after `mark`."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster
        self._stop = threading.Event()
        self._mark: float | None = None
        self.drained_at: float | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def mark(self) -> float:
        """From now on, watch for the queues to be empty; returns the monotonic time."""
        self._mark = time.monotonic()
        self.drained_at = None
        return self._mark

    def backlog_s(self) -> float:
        """Seconds from the mark until the queues were empty (0 if not marked or not seen)."""
        if self._mark is None or self.drained_at is None:
            return 0.0
        return self.drained_at - self._mark

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            if self._mark is None or self.drained_at is not None:
                continue
            try:
                empty = self._cluster.queued_messages() == 0
            except Exception:
                continue
            if empty:
                self.drained_at = time.monotonic()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
