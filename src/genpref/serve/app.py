"""``genpref serve``: a preference model behind HTTP (FastAPI + uvicorn), with dynamic batching.

Endpoints (JSON in, JSON out):

* ``POST /get_reward`` — OpenRLHF's remote reward interface: ``{"query": [full texts], "prompts":
  [prompt texts]}`` → ``{"rewards": [...], "scores": [...]}``. Each query must start with its prompt;
  the rest is the response. Rewards are group-relative (``genpref.integrations.engine.group_rewards``,
  queries with equal prompts form a group): GPM, the score against the group's mixture; BT, the scalar
  reward; PairPM, the mean win-probability in the group. ``prompts`` may be left out for a BT model
  only (each query is then scored as one text).
* ``POST /score`` and ``POST /prob`` — ``{"prompts", "responses_a", "responses_b"}`` → s(a ≻ b) or
  P(a ≻ b), as ``PreferenceModel.score`` / ``prob``.
* ``POST /rank`` — ``{"prompt", "responses"}`` → the K×K matrices and each response against the mixture.
* ``GET /health``, ``GET /info`` (model type, k, τ, backbone, limits).

A bad request gets a 4xx answer ``{"error": "...", ...}`` naming the field; the server keeps serving.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from genpref.errors import ConfigError, GenprefError
from genpref.integrations import engine
from genpref.models import scores as S
from genpref.models.preference_model import PreferenceModel
from genpref.serve.batcher import BatchedForwards, DynamicBatcher, ServerBusy
from genpref.serve.config import ServeArgs

log = logging.getLogger("genpref")


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant"]
    content: StrictStr


PromptIn = StrictStr | list[Message]
NonEmpty = Field(min_length=1)


class RewardRequest(BaseModel):
    query: Annotated[list[StrictStr], NonEmpty]
    prompts: list[StrictStr] | None = None
    labels: Any = None  # sent by OpenRLHF for rule-based rewards; unused


class PairRequest(BaseModel):
    prompts: Annotated[list[PromptIn], NonEmpty]
    responses_a: Annotated[list[StrictStr], NonEmpty]
    responses_b: Annotated[list[StrictStr], NonEmpty]


class RankRequest(BaseModel):
    prompt: PromptIn
    responses: Annotated[list[StrictStr], Field(min_length=2)]


class HTTPProblem(Exception):
    """A request the server refuses: status code and a message naming the field."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _as_prompt(prompt: str | list[Message]):
    return prompt if isinstance(prompt, str) else [m.model_dump() for m in prompt]


def _field_path(loc: Sequence[Any]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


class RewardService:
    """The model, its batcher and the request limits; the endpoint functions call it."""

    def __init__(self, model: PreferenceModel, args: ServeArgs) -> None:
        self.model, self.args = model, args
        self.batcher = DynamicBatcher(
            model,
            batching=args.batching,
            max_batch_size=args.max_batch_size,
            max_wait_s=args.max_wait_ms / 1000,
            max_queue=args.max_queue,
        )
        # request threads tokenise concurrently: a fast tokenizer's encode is read-only while its
        # truncation/padding settings stay fixed, which they do here (genpref truncates by itself)
        self.forwards = BatchedForwards(self.batcher, args.request_timeout_s)

    def check_size(self, **lists: Sequence) -> None:
        for name, items in lists.items():
            if len(items) > self.args.max_items:
                raise HTTPProblem(
                    413,
                    f"field '{name}' has {len(items)} items; this server accepts at most "
                    f"{self.args.max_items} per request (genpref serve --max_items). Split the request.",
                )

    def check_equal_lengths(self, **lists: Sequence) -> None:
        lengths = {name: len(items) for name, items in lists.items()}
        if len(set(lengths.values())) > 1:
            raise HTTPProblem(422, f"fields {', '.join(lengths)} must have equal lengths, got {lengths}")

    def rewards(self, request: RewardRequest) -> list[float]:
        queries, prompts = request.query, request.prompts
        self.check_size(query=queries)
        if prompts is None:
            if self.model.config.type != "bt":
                raise HTTPProblem(
                    422,
                    f"field 'prompts' is required for a {self.model.config.type} model: its reward is "
                    "relative to the other completions of the same prompt (OpenRLHF sends it).",
                )
            prompts = [""] * len(queries)
        self.check_equal_lengths(query=queries, prompts=prompts)
        for i, (q, p) in enumerate(zip(queries, prompts)):
            if not q.startswith(p):
                raise HTTPProblem(422, f"field 'query[{i}]' does not start with its prompt 'prompts[{i}]'")
        responses = [q[len(p) :] for q, p in zip(queries, prompts)]
        return engine.group_rewards(self.model, self.forwards, prompts, responses).tolist()

    def pair_scores(self, request: PairRequest):
        lists = dict(
            prompts=request.prompts, responses_a=request.responses_a, responses_b=request.responses_b
        )
        self.check_size(**lists)
        self.check_equal_lengths(**lists)
        prompts = [_as_prompt(p) for p in request.prompts]
        return engine.pair_scores(
            self.model, self.forwards, prompts, request.responses_a, request.responses_b
        )

    def rank(self, request: RankRequest) -> dict:
        self.check_size(responses=request.responses)
        r = engine.rank(self.model, self.forwards, _as_prompt(request.prompt), request.responses)
        return {
            "prob_matrix": r.prob_matrix.tolist(),
            "score_matrix": r.score_matrix.tolist(),
            "score_vs_mixture": r.score_vs_mixture.tolist(),
            "prob_vs_mixture": r.prob_vs_mixture.tolist(),
            "ranking": r.score_vs_mixture.argsort(descending=True).tolist(),
        }

    def info(self) -> dict:
        c = self.model.config
        return {
            "type": c.type,
            "k": c.k,
            "tau": c.temperature,
            "prompt_gate": c.prompt_gate,
            "l2_normalize": c.l2_normalize,
            "backbone": c.backbone,
            "is_encoder": self.model.is_encoder,
            "max_length": c.max_length,
            "batching": self.args.batching,
            "max_batch_size": self.args.max_batch_size,
            "max_items": self.args.max_items,
            "max_queue": self.args.max_queue,
            "forward_batches": self.batcher.forward_batches,
        }


def create_app(model: PreferenceModel, args: ServeArgs) -> FastAPI:
    """The FastAPI application serving ``model`` (tests and embedding applications call this)."""
    service = RewardService(model, args)
    app = FastAPI(title="genpref reward server", version="1")
    app.state.service = service
    max_body = int(args.max_body_mb * 2**20)

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > max_body:
            return JSONResponse(
                {"error": f"request body of {size} bytes exceeds --max_body_mb {args.max_body_mb}"}, 413
            )
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse({"error": f"request body is not valid JSON: {errors[0].get('msg')}"}, 400)
        message = "; ".join(f"{_field_path(e['loc'][1:]) or 'body'}: {e['msg']}" for e in errors[:5])
        detail = [{"field": _field_path(e["loc"][1:]), "message": e["msg"]} for e in errors]
        return JSONResponse({"error": message, "errors": detail}, 422)

    @app.exception_handler(HTTPProblem)
    async def problem(request: Request, exc: HTTPProblem):
        return JSONResponse({"error": str(exc)}, exc.status)

    @app.exception_handler(ServerBusy)
    async def busy(request: Request, exc: ServerBusy):
        return JSONResponse({"error": f"server busy ({exc}); retry later"}, 503)

    @app.exception_handler(TimeoutError)
    async def timeout(request: Request, exc: TimeoutError):
        return JSONResponse({"error": f"no answer within --request_timeout_s {args.request_timeout_s}"}, 504)

    @app.exception_handler(GenprefError)
    async def user_error(request: Request, exc: GenprefError):
        return JSONResponse({"error": str(exc)}, 400)

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/info")
    def info() -> dict:
        return service.info()

    @app.post("/get_reward")
    def get_reward(request: RewardRequest) -> dict:
        rewards = service.rewards(request)
        return {"rewards": rewards, "scores": rewards}

    @app.post("/score")
    def score(request: PairRequest) -> dict:
        return {"scores": service.pair_scores(request).tolist()}

    @app.post("/prob")
    def prob(request: PairRequest) -> dict:
        return {"probs": S.preference_prob(service.pair_scores(request), model.config.temperature).tolist()}

    @app.post("/rank")
    def rank(request: RankRequest) -> dict:
        return service.rank(request)

    return app


def _device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"--device {name!r} is not a torch device ({exc})") from exc


def serve(args: ServeArgs) -> None:
    """Load the checkpoint and serve it until interrupted."""
    import torch
    import uvicorn

    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    model = PreferenceModel.from_pretrained(args.model, dtype=dtype).to(_device(args.device))
    app = create_app(model, args)
    print(
        f"genpref serve: {model.config.type} model from {args.model} on http://{args.host}:{args.port}",
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
