"""Dynamic batching: one worker thread owns the model; request threads queue jobs and wait for results.

The worker takes the first queued job, then keeps taking jobs for up to ``max_wait_s`` or until
``max_batch_size`` sequences are collected, and runs them as one set of forwards (cut into forwards of
``max_batch_size`` sequences). Group ids are offset per job, so a group never spans two requests and
every reward is computed exactly as for the request alone. The queue is bounded: when it is full,
:meth:`DynamicBatcher.submit` raises :class:`ServerBusy` at once instead of letting latency grow.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import torch
from torch import Tensor

from genpref.data.encode import Encoded
from genpref.integrations.engine import LocalForwards
from genpref.models.preference_model import PreferenceModel


class ServerBusy(Exception):
    """The request queue is full."""


@dataclass
class _Job:
    encoded: Sequence[Encoded]
    groups: Tensor | None  # (N,) for embeddings; None for PairPM joint logits
    future: Future = field(default_factory=Future)


class DynamicBatcher:
    """Runs queued embedding or joint-logit jobs of one model, merging concurrent ones."""

    def __init__(
        self,
        model: PreferenceModel,
        *,
        batching: bool = True,
        max_batch_size: int = 32,
        max_wait_s: float = 0.005,
        max_queue: int = 64,
    ) -> None:
        self.forwards = LocalForwards(model, max_batch_size)
        self.batching, self.max_batch_size, self.max_wait_s = batching, max_batch_size, max_wait_s
        self.queue: queue.Queue[_Job | None] = queue.Queue(maxsize=max_queue)
        self.forward_batches = 0
        """Batches run so far (each one or more forwards); with batching below the number of requests."""
        self._thread = threading.Thread(target=self._loop, name="genpref-batcher", daemon=True)
        self._thread.start()

    def submit(self, encoded: Sequence[Encoded], groups: Tensor | None) -> Future:
        """Queue a job; its future gives (embeddings, eigenvalues | None) or, with groups None, logits."""
        job = _Job(encoded, groups)
        try:
            self.queue.put_nowait(job)
        except queue.Full:
            raise ServerBusy(f"{self.queue.maxsize} requests are already waiting") from None
        return job.future

    def close(self) -> None:
        self.queue.put(None)
        self._thread.join(timeout=10)

    def _collect(self, first: _Job) -> list[_Job] | None:
        jobs, n = [first], len(first.encoded)
        deadline = time.monotonic() + self.max_wait_s
        while self.batching and n < self.max_batch_size:
            try:
                job = self.queue.get(timeout=max(deadline - time.monotonic(), 0.0) or 1e-6)
            except queue.Empty:
                break
            if job is None:  # close(): finish this batch, then stop
                self._run(jobs)
                return None
            jobs.append(job)
            n += len(job.encoded)
        return jobs

    def _loop(self) -> None:
        while (first := self.queue.get()) is not None:
            jobs = self._collect(first)
            if jobs is None:
                return
            self._run(jobs)

    def _run(self, jobs: list[_Job]) -> None:
        self.forward_batches += 1
        encoded = [e for job in jobs for e in job.encoded]
        sizes = [len(job.encoded) for job in jobs]
        try:
            if jobs[0].groups is None:
                parts = self.forwards.joint_logits(encoded).split(sizes)
                for job, logits in zip(jobs, parts):
                    job.future.set_result(logits)
                return
            offsets, groups = 0, []
            for job in jobs:  # distinct ids per job: no group spans two requests
                groups.append(job.groups + offsets)
                offsets += int(job.groups.max()) + 1
            emb, lam = self.forwards.embed(encoded, torch.cat(groups))
            for job, e, lam_part in zip(jobs, emb.split(sizes), _split(lam, sizes)):
                job.future.set_result((e, lam_part))
        except Exception as exc:  # the request threads report it; the worker keeps serving
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)


def _split(x: Tensor | None, sizes: list[int]) -> Sequence[Tensor | None]:
    return [None] * len(sizes) if x is None else x.split(sizes)


class BatchedForwards:
    """The ``Forwards`` interface of ``genpref.integrations.engine`` over a :class:`DynamicBatcher`."""

    def __init__(self, batcher: DynamicBatcher, timeout_s: float) -> None:
        self.batcher, self.timeout_s = batcher, timeout_s

    def embed(self, encoded: Sequence[Encoded], groups: Tensor) -> tuple[Tensor, Tensor | None]:
        return self.batcher.submit(encoded, groups).result(timeout=self.timeout_s)

    def joint_logits(self, encoded: Sequence[Encoded]) -> Tensor:
        return self.batcher.submit(encoded, None).result(timeout=self.timeout_s)
