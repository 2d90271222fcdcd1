"""Config of ``genpref selfplay`` (SPPO / GPO iterations)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from genpref.selfplay.generate import SamplingConfig
from genpref.train.config import OptimConfig, TrainConfig
from genpref.train.po_config import EngineConfig, PolicyConfig
from genpref.validate import at_least, between, positive


@dataclass
class PromptsConfig:
    """Where prompts come from (any file or hub dataset with a prompt column, messages, MT-Bench turns or
    Arena-Hard rows); ``builtin:train`` / ``builtin:eval`` are disjoint halves of a small prompt set
    shipped with genpref (``builtin`` is all of it)."""

    train: str = "builtin:train"
    """Prompts for self-play generation."""
    eval: str = "builtin:eval"
    """Held-out prompts for the win-rate evaluation."""
    limit: int = 32
    """Training prompts used per iteration."""
    eval_limit: int = 80
    """Evaluation prompts."""
    chat: bool = True
    """Give plain-text prompts to the policy as one user message, so its chat template is applied (an
    instruct model answers instead of continuing the text). The judge sees the prompt as loaded, as
    preference data stores it. False: plain text verbatim (base models)."""
    max_prompt_tokens: int | None = None
    """Skip training prompts longer than this many tokens (chat template included) and take the next
    ones instead; the log says how many were skipped. Long prompts dominate generation and training
    time (padding), so a CPU run may want ~256; None keeps every prompt."""
    split: str = "train"
    """Split name for hub datasets."""
    instruction: str | None = None
    """Text appended to every prompt the policy sees (training and evaluation, π_0 and later
    iterates alike), e.g. "Answer in at most 80 words." so that answers finish within
    sampling.max_new_tokens instead of being cut; the judge sees the prompt as loaded."""


@dataclass
class EvalConfig:
    """Win-rate evaluation after each iteration."""

    enabled: bool = True
    """Evaluate π_{t+1} against π_0 and π_t."""
    temperature: float = 0.7
    """Sampling temperature of the evaluation responses."""
    max_new_tokens: int = 128
    """Tokens per evaluation response."""
    judges: list[str] = field(default_factory=list)
    """More judges (preference-model checkpoints) that score the same evaluation responses, reported
    beside the training judge: a judge trained independently (other data or another backbone) checks
    that the policy improved rather than learnt the training judge's quirks."""


@dataclass
class SelfPlayConfig:
    """genpref selfplay: SPPO or GPO self-play iterations judged by any genpref preference model."""

    algorithm: Literal["sppo", "gpo"] = "gpo"
    """sppo: target P̂(y ≻ π_t) − ½; gpo: target s(y ≻ π_t) (needs a BT or GPM judge)."""
    judge: str | None = None
    """Preference-model checkpoint (genpref rm train's final/ folder): GPM, BT or PairPM."""
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    """Start policy π_0 (policy.max_length is not used here: a training sequence is the prompt, at most
    prompts.max_prompt_tokens, plus a sampled response, at most sampling.max_new_tokens)."""
    prompts: PromptsConfig = field(default_factory=PromptsConfig)
    """Prompts."""
    k: int = 4
    """Samples per prompt (K ≥ 2)."""
    iterations: int = 1
    """Self-play iterations."""
    eta: float = 1000.0
    """η in (log π_θ − log π_t − η·target)²; β = 1/η."""
    target_nats: float | None = None
    """Choose η per iteration from the target scale: η = target_nats / std(targets), so the regression
    asks for log-ratio changes of about this many nats whatever the judge's scale (SPPO's P̂ − ½ and GPO's
    logit differ by a factor of ~4 near ½). Overrides ``eta``; the η used is recorded per iteration."""
    include_self: bool = True
    """Include j = i in the mean over samples (as the paper's code does; that term is ½ / 0)."""
    selection: Literal["all", "best_worst"] = "all"
    """Train on every sample, or only each prompt's best and worst (SPPO's released scripts)."""
    weighting: Literal["sample", "distinct", "judged_distinct", "inverse_propensity"] = "sample"
    """Loss weight of each sample. sample: 1 (the papers). A gradient step moves a response in proportion
    to how often it was drawn (the replicator dynamics), where multiplicative weights asks for a step
    independent of it; corrections (``genpref.losses.selfplay``): distinct: each distinct response text of
    a prompt counts once (1/n(y)); judged_distinct: each response *the judge* cannot tell apart from
    another (rows of its P matrix within ``judge_tolerance``) counts once; inverse_propensity:
    1/(K·π_t(y|x)), clipped at ``weight_clip`` and rescaled to mean 1 (unbiased across prompts). They
    equal ``sample`` when answers are long and all judged differently; they matter when answers repeat
    (short answers, choices)."""
    weight_clip: float = 10.0
    """Largest inverse-propensity weight before rescaling."""
    center_targets: bool = False
    """Subtract each prompt's weighted mean target (``genpref.losses.selfplay.center_targets``): the
    update multiplicative weights asks for is the same, and one gradient step then no longer pushes every
    response toward the most likely one when the weighted targets do not sum to zero (loss weights other
    than ``sample``, optimistic targets)."""
    judge_tolerance: float = 0.05
    """judged_distinct: two samples of a prompt are one response when their rows of the judge's P matrix
    differ by at most this in every column."""
    solver: Literal["gradient", "line_search", "gauss_newton"] = "gradient"
    """How each iteration fits its regression. gradient: ``optim`` and ``train`` (epochs of optimiser
    steps, as the papers). line_search: the same steps, then the whole update scaled along itself to the
    length that fits the regression best to first order (``genpref.selfplay.line_search``; one more
    no-grad pass over the samples; single process), so the realised η no longer depends on the size of
    the iteration's gradients. gauss_newton: one damped Gauss-Newton step in sample space
    (``genpref.selfplay.gauss_newton``; single process): every sampled response's log-ratio moves by η·g
    to first order, however often it was drawn and however its gradient overlaps the others', at one
    batched forward and backward pass; it updates the linear layers (not embeddings or norms)."""
    line_search_max_scale: float = 10.0
    """line_search: largest factor applied to the optimiser's update."""
    gauss_newton_damping: float = 0.1
    """gauss_newton: Levenberg-Marquardt damping λ relative to the mean diagonal of the gradients' Gram matrix."""
    gauss_newton_steps: int = 1
    """gauss_newton: steps per iteration (each re-linearises at the current policy)."""
    length_normalized: bool = False
    """LN-GPO: divide the log-ratio by the response length."""
    target_clip: float | None = None
    """Clip targets to [-clip, clip]."""
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    """Generation."""
    generator: Literal["transformers", "vllm"] = "transformers"
    """Generation backend (vllm needs the genpref[vllm] extra and a GPU)."""
    engine: EngineConfig = field(default_factory=EngineConfig)
    """Log-prob engine for training (reference settings unused: π_t's log-probs come from generation)."""
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=5e-7, warmup_ratio=0.1))
    """Optimizer (the paper: RMSprop-like, lr 5e-7)."""
    train: TrainConfig = field(default_factory=lambda: TrainConfig(batch_size=8))
    """Training loop of each iteration."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """Evaluation."""
    seed: int = 0
    """Seed of sampling (per iteration) and training."""
    output_dir: str = "runs/selfplay"
    """Run folder: iter-N/ stages, results.jsonl, plots."""

    def __post_init__(self) -> None:
        at_least("k", self.k, 2)  # targets compare each sample with the others
        at_least("iterations", self.iterations, 1)
        positive("eta", self.eta)
        positive("target_clip", self.target_clip, optional=True)
        positive("target_nats", self.target_nats, optional=True)
        positive("weight_clip", self.weight_clip)
        at_least("gauss_newton_steps", self.gauss_newton_steps, 1)
        between("gauss_newton_damping", self.gauss_newton_damping, 0.0, 1e6)
        between("judge_tolerance", self.judge_tolerance, 0.0, 1.0)
