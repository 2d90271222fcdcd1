"""Arguments of ``genpref serve`` (kept free of heavy imports so ``--help`` is instant)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class ServeArgs:
    """genpref serve: an HTTP reward server (OpenRLHF's /get_reward, /score, /prob, /rank, /health, /info)."""

    model: str
    """Checkpoint folder written by genpref rm train (e.g. runs/rm/final)."""
    host: str = "127.0.0.1"
    """Address to listen on (0.0.0.0 exposes the server to the network: it has no authentication)."""
    port: int = 8000
    """TCP port."""
    batching: bool = True
    """Merge concurrent requests into shared backbone forwards (dynamic batching)."""
    max_batch_size: int = 32
    """Sequences per backbone forward; a merged batch is cut into forwards of at most this size."""
    max_wait_ms: float = 5.0
    """How long the batcher waits for more requests before running a batch that is not yet full."""
    max_queue: int = 64
    """Requests waiting for the model; a request arriving when the queue is full gets 503 (retry later)."""
    max_items: int = 256
    """Largest list a request may send (queries, pairs or responses); larger requests get 413."""
    max_body_mb: float = 16.0
    """Largest request body in MB; larger requests get 413."""
    request_timeout_s: float = 300.0
    """A request still unanswered after this many seconds gets 504."""
    device: str = "auto"
    """cuda, cpu, cuda:1, ...; auto takes the GPU when there is one."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """Weights and activations dtype."""
