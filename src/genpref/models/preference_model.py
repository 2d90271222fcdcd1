"""PreferenceModel: one class for BT, GPM and PairPM (backbone + pooling + head + link).

* BT: head R^H → R, s(a ≻ b) = r_a − r_b.
* GPM: head R^H → R^{2k} (optionally L2-normalised), s(a ≻ b | x) = ⟨R^≻(x) v_a, v_b⟩,
  with the optional prompt gate λ(x) = softmax(W_p h_x) (arXiv 2410.02197, §4).
* PairPM: reads (x, a, b) jointly, head R^H → R gives the logit of P(a ≻ b); the O(K²) baseline.

The prompt state h_x is the hidden state at the prompt's last token. For a causal decoder it is read
from the response sequences themselves (causality makes it independent of the response; the mean
over the sequences being compared is used so scores stay exactly antisymmetric). A bidirectional
encoder's token states see the response, so for encoders h_x comes from one extra prompt-only forward.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from tqdm.auto import tqdm

from genpref.data.encode import (
    Encoded,
    Truncation,
    encode_chosen_rejected,
    encode_pair_joint,
    encode_response,
)
from genpref.data.types import PreferenceExample, Prompt
from genpref.errors import ConfigError
from genpref.models import scores as S
from genpref.models.backbone import Backbone, gather_positions, load_backbone, pool
from genpref.models.batching import pad_sequences, prompt_only
from genpref.models.config import PreferenceModelConfig
from genpref.models.lora import unwrapped

CONFIG_NAME = "genpref.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_VERSION = 1


@dataclass
class PairFeatures:
    """A tokenised comparison, ready to batch."""

    first: Encoded  # BT/GPM: chosen; PairPM: (x, chosen, rejected)
    second: Encoded  # BT/GPM: rejected; PairPM: (x, rejected, chosen)
    label: float
    margin: float  # NaN when the row has none
    subset: str | None = None


@dataclass
class RankResult:
    """Preferences among K responses to one prompt."""

    prob_matrix: Tensor  # (K, K) P(y_i ≻ y_j | x); diagonal ½ for BT/GPM
    score_matrix: Tensor  # (K, K) s(y_i ≻ y_j | x) (PairPM: the classifier logit)
    score_vs_mixture: Tensor  # (K,) s(y_i ≻ uniform mixture of the K)
    prob_vs_mixture: Tensor  # (K,) mean_j P(y_i ≻ y_j), j = i included
    forwards: int  # backbone sequence forwards spent


class PreferenceModel(nn.Module):
    def __init__(self, config: PreferenceModelConfig, backbone: Backbone) -> None:
        super().__init__()
        pooling = config.pooling if config.pooling != "auto" else ("mean" if backbone.is_encoder else "last")
        config = replace(config, tau=config.temperature, pooling=pooling)  # checkpoints store resolved values
        self.config = config
        self.backbone = backbone.model
        self.tokenizer = backbone.tokenizer
        self.is_encoder = backbone.is_encoder
        self.pooling = pooling
        self._prompt_pooling = (
            "mean" if pooling == "response_mean" else pooling
        )  # prompt-only rows have no response
        for name, param in self.backbone.named_parameters():
            if name.startswith("pooler."):  # BERT's pooler output is never used; DDP needs no unused grads
                param.requires_grad_(False)
        hidden = backbone.hidden_size
        self.head = nn.Linear(hidden, config.embedding_dim, bias=config.head_bias)
        self.prompt_head = nn.Linear(hidden, config.k, bias=False) if config.prompt_gate else None
        nn.init.normal_(self.head.weight, std=1.0 / (hidden + 1) ** 0.5)
        if self.head.bias is not None:
            nn.init.zeros_(self.head.bias)
        if self.prompt_head is not None:
            nn.init.zeros_(self.prompt_head.weight)  # start from equal block scales
        self.head.to(self.backbone.dtype)
        if self.prompt_head is not None:
            self.prompt_head.to(self.backbone.dtype)
        self.forward_count = 0
        """Backbone sequence forwards so far (the cost measure of rank_cost)."""
        self.padding_side = "right"

    # ------------------------------------------------------------------ construction and I/O
    @classmethod
    def from_config(
        cls, config: PreferenceModelConfig, dtype: torch.dtype = torch.float32
    ) -> PreferenceModel:
        """A new model: pretrained backbone, freshly initialised head(s)."""
        backbone = load_backbone(
            config.backbone,
            architecture=config.architecture,
            dtype=dtype,
            trust_remote_code=config.trust_remote_code,
        )
        return cls(config, backbone)

    def state_dict_for_save(self) -> dict[str, Tensor]:
        """Full weights with any LoRA adapter merged out of place (the live model is not touched)."""
        from genpref.models.lora import merged_state_dict

        state = {f"backbone.{k}": v for k, v in merged_state_dict(self.backbone).items()}
        state.update({f"head.{k}": v for k, v in self.head.state_dict().items()})
        if self.prompt_head is not None:
            state.update({f"prompt_head.{k}": v for k, v in self.prompt_head.state_dict().items()})
        return {k: v.detach().contiguous().cpu() for k, v in state.items()}

    def save_pretrained(self, path: str | Path) -> None:
        """Write safetensors weights, the backbone config, the tokenizer and genpref.json into ``path``.

        The caller makes the directory write atomic (see ``genpref.train.checkpoint``).
        """
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        base = unwrapped(self.backbone)
        base.config.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        save_file(self.state_dict_for_save(), path / WEIGHTS_NAME, metadata={"format": "pt"})
        meta = {
            "format_version": FORMAT_VERSION,
            "model": asdict(self.config),
            "is_encoder": self.is_encoder,
        }
        (path / CONFIG_NAME).write_text(json.dumps(meta, indent=2))

    @classmethod
    def from_pretrained(
        cls, path: str | Path, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
    ) -> PreferenceModel:
        """Load a checkpoint written by ``save_pretrained`` (safetensors only; no pickle), on ``device``
        (default: the CPU; stand-alone users such as the self-play judge pass ``default_device()``)."""
        from transformers import AutoConfig, AutoModel

        from genpref.models.backbone import load_tokenizer

        path = Path(path)
        meta = read_checkpoint_meta(path)
        meta_file = path / CONFIG_NAME
        try:
            config = PreferenceModelConfig(**meta["model"])
        except TypeError as exc:
            raise ConfigError(f"{meta_file}: incompatible model config ({exc})") from exc
        trust = config.trust_remote_code
        weights = path / WEIGHTS_NAME
        if not weights.is_file():
            pickled = [p.name for p in path.glob("*.bin")] + [p.name for p in path.glob("*.pt")]
            how = (
                f"it holds only pickle weights ({', '.join(pickled)}), which genpref never loads (unpickling "
                "runs code); convert them with safetensors.torch.save_file in a trusted session"
                if pickled
                else "re-save it with genpref, or point to the complete folder"
            )
            raise ConfigError(f"{path}: no {WEIGHTS_NAME}.\n  fix: {how}")
        try:
            hf_config = AutoConfig.from_pretrained(path, trust_remote_code=trust)
            tokenizer = load_tokenizer(str(path), trust_remote_code=trust)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"{path}: the backbone config or tokenizer files are missing or broken "
                f"({str(exc).splitlines()[0]}).\n  fix: re-save the checkpoint with genpref"
            ) from None
        model_backbone = AutoModel.from_config(hf_config, dtype=dtype, trust_remote_code=trust)
        backbone = Backbone(model_backbone, tokenizer, meta["is_encoder"], str(path))
        model = cls(config, backbone)
        try:
            state = load_file(weights)
        except Exception as exc:  # safetensors raises SafetensorError (truncated, not safetensors)
            raise ConfigError(
                f"{weights}: unreadable weights ({str(exc).splitlines()[0]}); the file is truncated or "
                "corrupt.\n  fix: copy the checkpoint again, or use an earlier one (OUTPUT_DIR/checkpoints/step-N/model)"
            ) from None
        try:
            missing, unexpected = model.load_state_dict(state, strict=False)
        except RuntimeError as exc:  # shape mismatches raise even with strict=False
            raise ConfigError(
                f"{path / WEIGHTS_NAME}: weights do not match the config in {CONFIG_NAME} ({str(exc).splitlines()[-1].strip()}).\n"
                "  fix: the checkpoint was edited or mixed from two runs; re-save it with genpref"
            ) from exc
        missing = [k for k in missing if not k.endswith("position_ids")]
        if missing or unexpected:
            raise ConfigError(
                f"{path / WEIGHTS_NAME}: weights do not match the config (missing {missing[:5]}, "
                f"unexpected {unexpected[:5]}).\n  fix: the checkpoint is incomplete or from another model"
            )
        model.to(dtype)
        if device is not None:
            model.to(device)
        return model.eval()

    # ------------------------------------------------------------------ tokenisation
    def _encode(self, prompt: Prompt, response: str) -> Encoded | None:
        return encode_response(
            self.tokenizer,
            prompt,
            response,
            max_length=self.config.max_length,
            truncation=Truncation(self.config.truncation),
            is_encoder=self.is_encoder,
        )

    def _encode_joint(self, prompt: Prompt, a: str, b: str) -> Encoded | None:
        return encode_pair_joint(
            self.tokenizer,
            prompt,
            a,
            b,
            max_length=self.config.max_length,
            truncation=Truncation(self.config.truncation),
            is_encoder=self.is_encoder,
        )

    def featurize(self, example: PreferenceExample) -> PairFeatures | None:
        """Tokenise one comparison; None when the truncation policy drops it."""
        if self.config.type == "pairpm":
            first = self._encode_joint(example.prompt, example.chosen, example.rejected)
            second = self._encode_joint(example.prompt, example.rejected, example.chosen)
        else:  # both sides cut their prompt identically, so the prompt tokens stay shared
            pair = encode_chosen_rejected(
                self.tokenizer,
                example.prompt,
                example.chosen,
                example.rejected,
                max_length=self.config.max_length,
                truncation=Truncation(self.config.truncation),
                is_encoder=self.is_encoder,
            )
            first, second = pair if pair is not None else (None, None)
        if first is None or second is None:
            return None
        margin = float("nan") if example.margin is None else float(example.margin)
        return PairFeatures(first, second, float(example.label), margin, example.subset)

    # ------------------------------------------------------------------ tensor-level forward
    def _hidden(self, batch: dict[str, Tensor]) -> Tensor:
        """(N, T) ids → (N, T, H) last hidden states."""
        self.forward_count += batch["input_ids"].shape[0]
        out = self.backbone(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            position_ids=batch["position_ids"],
        )
        return out.last_hidden_state

    def _head(self, pooled: Tensor) -> Tensor:
        """(N, H) → (N, d) embeddings (BT/PairPM: d = 1)."""
        out = self.head(pooled.to(self.head.weight.dtype))
        if self.config.type == "gpm" and self.config.l2_normalize:
            out = F.normalize(out, p=2, dim=-1)
        return out

    def _batch(self, encoded: Sequence[Encoded]) -> dict[str, Tensor]:
        device = self.head.weight.device
        batch = pad_sequences(encoded, self.tokenizer.pad_token_id, self.padding_side)
        return {k: v.to(device) for k, v in batch.items()}

    def embed_encoded(
        self, encoded: Sequence[Encoded], groups: Tensor | None = None, *, with_gate: bool = True
    ) -> tuple[Tensor, Tensor | None]:
        """Embeddings and prompt-gate eigenvalues for N tokenised (prompt, response) sequences.

        Args:
            encoded: N sequences.
            groups: (N,) group id per sequence; sequences of one group share one prompt, and the
                gate is computed from the mean prompt state of the group. None: each its own group.
            with_gate: False skips the gate (for a gated encoder: skips the prompt-only forward), for
                callers that already have it.
        Returns:
            embeddings (N, d) and eigenvalues (N, k) or None without the gate.
        """
        batch = self._batch(encoded)
        hidden = self._hidden(batch)  # (N, T, H)
        embedding = self._head(pool(hidden, batch["attention_mask"], self.pooling, batch["prompt_index"]))
        if self.prompt_head is None or not with_gate:
            return embedding, None
        if groups is None:
            groups = torch.arange(len(encoded))
        groups = groups.to(hidden.device)
        if self.is_encoder:
            # one prompt-only forward per group (its first sequence), broadcast to the group
            first = [int((groups == g).nonzero()[0]) for g in range(int(groups.max()) + 1)]
            p_batch = self._batch(prompt_only([encoded[i] for i in first]))
            prompt_state = pool(self._hidden(p_batch), p_batch["attention_mask"], self._prompt_pooling)[
                groups
            ]
        else:
            prompt_state = S.group_mean(gather_positions(hidden, batch["prompt_index"]), groups)  # (N, H)
        eigenvalues = S.prompt_gate(self.prompt_head(prompt_state.to(self.prompt_head.weight.dtype)))
        return embedding, eigenvalues

    def pair_scores(self, first: Tensor, second: Tensor, eigenvalues: Tensor | None) -> Tensor:
        """s(first ≻ second) from embeddings (N, d) → (N,)."""
        if self.config.type == "gpm":
            return self.config.sign * S.gpm_score(first, second, eigenvalues)
        return S.bt_score(first.squeeze(-1), second.squeeze(-1))

    def collate(self, features: Sequence[PairFeatures]) -> dict[str, Tensor]:
        """Batch B comparisons into one padded (2B, T) tensor set (first sides, then second sides).

        Tensors only (no device moves), so DDP/FSDP wrappers can pass them through ``forward``.
        """
        encoded = [f.first for f in features] + [f.second for f in features]
        batch = pad_sequences(encoded, self.tokenizer.pad_token_id, self.padding_side)
        batch["label"] = torch.tensor([f.label for f in features], dtype=torch.float32)
        batch["margin"] = torch.tensor([f.margin for f in features], dtype=torch.float32)
        if self.prompt_head is not None and self.is_encoder:
            prompts = pad_sequences(
                prompt_only(encoded[: len(features)]), self.tokenizer.pad_token_id, self.padding_side
            )
            batch.update({f"prompt_{k}": v for k, v in prompts.items() if k != "prompt_index"})
        return batch

    def forward(
        self,
        label: Tensor,
        margin: Tensor,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        prompt_index: Tensor | None = None,
        prompt_input_ids: Tensor | None = None,
        prompt_attention_mask: Tensor | None = None,
        prompt_position_ids: Tensor | None = None,
        pooled: Tensor | None = None,
        prompt_state: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Training forward: one concatenated backbone pass over both sides of B pairs.

        Args:
            label: (B,) P(chosen ≻ rejected); margin: (B,) NaN where absent.
            input_ids, attention_mask, position_ids: (2B, T), rows [0, B) the first sides
                (chosen; PairPM: (x, chosen, rejected)) and rows [B, 2B) the second sides.
            prompt_index: (2B,) position of each row's last prompt token.
            prompt_*: (B, Tp) prompt-only rows (gated encoders only).
            pooled: (2B, H) the rows' pooled backbone states *instead of* the ids: a frozen backbone's
                features, computed once before training (:mod:`genpref.models.frozen_features`).
            prompt_state: (B, H) with ``pooled``: each pair's prompt state (gated GPM only).
        Returns:
            logits (N,) = s/τ oriented so that positive means "first wins", label (N,), margin (N,).
            BT/GPM: N = B. PairPM: N = 2B (both presentation orders; the second with 1 − label).
            BT also: rewards (B, 2), the rewards of the first and of the second sides.
        """
        n = label.shape[0]
        hidden = None
        if pooled is not None and self.prompt_head is not None and prompt_state is None:
            raise ValueError("a gated GPM given pooled states needs their prompt_state too")
        if pooled is None:
            batch = {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids}
            hidden = self._hidden(batch)  # (2B, T, H)
            pooled = pool(hidden, attention_mask, self.pooling, prompt_index)  # (2B, H)
        embedding = self._head(pooled)  # (2B, d)
        if self.config.type == "pairpm":
            logit = embedding.squeeze(-1).float()
            return {
                "logits": logit / self.config.temperature,
                "label": torch.cat([label, 1 - label]),
                "margin": torch.cat([margin, margin]),
            }
        eigenvalues = None
        if self.prompt_head is not None:
            if prompt_state is None and self.is_encoder:
                p_batch = {
                    "input_ids": prompt_input_ids,
                    "attention_mask": prompt_attention_mask,
                    "position_ids": prompt_position_ids,
                }
                prompt_state = pool(
                    self._hidden(p_batch), prompt_attention_mask, self._prompt_pooling
                )  # (B, H)
            elif prompt_state is None:
                states = gather_positions(hidden, prompt_index)  # (2B, H); equal halves by causality
                prompt_state = 0.5 * (states[:n] + states[n:])
            eigenvalues = S.prompt_gate(
                self.prompt_head(prompt_state.to(self.prompt_head.weight.dtype))
            ).float()
        score = self.pair_scores(embedding[:n].float(), embedding[n:].float(), eigenvalues)
        out = {"logits": score / self.config.temperature, "label": label, "margin": margin}
        if self.config.type == "bt":  # (B,) each side's reward, for reward centring
            out["rewards"] = torch.stack([embedding[:n, 0], embedding[n:, 0]], dim=-1).float()
        return out

    # ------------------------------------------------------------------ user API (inference)
    @torch.inference_mode()
    def embed(
        self,
        prompts: Sequence[Prompt],
        responses: Sequence[str],
        batch_size: int = 16,
        progress: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Embeddings (N, d) and gate eigenvalues (N, k) | None of N (prompt, response) pairs.

        BT's "embedding" is its reward, shape (N, 1). PairPM has no per-response embedding.
        """
        if self.config.type == "pairpm":
            raise ConfigError("a pairpm model has no per-response embedding; use prob() or rank()")
        encoded = [self.encode_for_inference(p, r) for p, r in zip(prompts, responses, strict=True)]
        out_e, out_l = [], []
        for start in tqdm(range(0, len(encoded), batch_size), disable=not progress, desc="embed"):
            e, lam = self.embed_encoded(encoded[start : start + batch_size])
            out_e.append(e.float().cpu())
            if lam is not None:
                out_l.append(lam.float().cpu())
        return torch.cat(out_e), (torch.cat(out_l) if out_l else None)

    def encode_for_inference(self, prompt: Prompt, response: str) -> Encoded:
        enc = self._encode(prompt, response)
        if enc is None:  # inference never drops silently
            return encode_response(
                self.tokenizer,
                prompt,
                response,
                max_length=self.config.max_length,
                truncation=Truncation.TRUNCATE,
                is_encoder=self.is_encoder,
            )
        return enc

    @torch.inference_mode()
    def score(
        self,
        prompts: Sequence[Prompt],
        responses_a: Sequence[str],
        responses_b: Sequence[str],
        batch_size: int = 16,
        progress: bool = False,
    ) -> Tensor:
        """s(a ≻ b | x) for N rows, shape (N,). PairPM: the classifier logit of the (x, a, b) order."""
        if self.config.type == "pairpm":
            logits = []
            rows = list(zip(prompts, responses_a, responses_b, strict=True))
            for start in tqdm(range(0, len(rows), batch_size), disable=not progress, desc="score"):
                enc = [
                    self.encode_joint_for_inference(p, a, b) for p, a, b in rows[start : start + batch_size]
                ]
                logits.append(self.joint_logits_encoded(enc))
            return torch.cat(logits)
        n = len(prompts)
        scores = []
        for start in tqdm(range(0, n, batch_size), disable=not progress, desc="score"):
            sl = slice(start, start + batch_size)
            ps, a, b = list(prompts[sl]), list(responses_a[sl]), list(responses_b[sl])
            m = len(ps)
            enc = [self.encode_for_inference(p, r) for p, r in zip(ps + ps, a + b)]
            emb, lam = self.embed_encoded(enc, torch.arange(m).repeat(2))
            lam = None if lam is None else lam[:m].float()
            scores.append(self.pair_scores(emb[:m].float(), emb[m:].float(), lam).cpu())
        return torch.cat(scores)

    def joint_logits_encoded(self, encoded: Sequence[Encoded]) -> Tensor:
        """PairPM: classifier logits of N tokenised (x, a, b) sequences, shape (N,), float32 on the CPU."""
        batch = self._batch(encoded)
        hidden = self._hidden(batch)  # (N, T, H)
        pooled = pool(hidden, batch["attention_mask"], self.pooling, batch["prompt_index"])
        return self._head(pooled).squeeze(-1).float().cpu()

    def encode_joint_for_inference(self, prompt: Prompt, a: str, b: str) -> Encoded:
        enc = self._encode_joint(prompt, a, b)
        if enc is None:
            return encode_pair_joint(
                self.tokenizer,
                prompt,
                a,
                b,
                max_length=self.config.max_length,
                truncation=Truncation.TRUNCATE,
                is_encoder=self.is_encoder,
            )
        return enc

    def prob(self, prompts, responses_a, responses_b, batch_size: int = 16, progress: bool = False) -> Tensor:
        """P(a ≻ b | x) = σ(s/τ), shape (N,)."""
        return S.preference_prob(
            self.score(prompts, responses_a, responses_b, batch_size, progress), self.config.temperature
        )

    @torch.inference_mode()
    def rank(self, prompt: Prompt, responses: Sequence[str], batch_size: int = 16) -> RankResult:
        """Preference matrix of K responses and each one's standing against their uniform mixture.

        BT/GPM: K backbone forwards (plus one prompt-only forward for a gated encoder).
        PairPM: K(K−1) forwards, one per ordered pair.
        """
        k = len(responses)
        if k < 2:
            raise ConfigError(f"rank needs at least 2 responses, got {k}")
        before = self.forward_count
        tau = self.config.temperature
        if self.config.type == "pairpm":
            pairs = [(i, j) for i in range(k) for j in range(k) if i != j]
            logits = self.score(
                [prompt] * len(pairs),
                [responses[i] for i, _ in pairs],
                [responses[j] for _, j in pairs],
                batch_size,
            )
            score = torch.zeros(k, k)
            for (i, j), z in zip(pairs, logits):
                score[i, j] = z
            return rank_from_pair_logits(score, tau, self.forward_count - before)
        enc = [self.encode_for_inference(prompt, r) for r in responses]
        parts, lam = [], None
        for start in range(0, k, batch_size):
            chunk = enc[start : start + batch_size]
            # one prompt → one gate: computed with the first chunk only (a gated encoder spends one
            # prompt-only forward per call, not per chunk; for a decoder every chunk gives the same λ)
            e, chunk_lam = self.embed_encoded(
                chunk, torch.zeros(len(chunk), dtype=torch.long), with_gate=start == 0
            )
            parts.append(e.float().cpu())
            if chunk_lam is not None:
                lam = chunk_lam[0].float().cpu()
        return rank_from_embeddings(self.config, torch.cat(parts), lam, self.forward_count - before)


def rank_from_embeddings(
    config: PreferenceModelConfig, embeddings: Tensor, eigenvalues: Tensor | None, forwards: int
) -> RankResult:
    """BT/GPM preferences among K responses to one prompt from their embeddings.

    Args:
        embeddings: (K, d) (BT: d = 1, the reward).
        eigenvalues: (k,) the prompt's gate, or None.
        forwards: backbone forwards spent, reported as is.
    """
    if config.type == "gpm":
        score = config.sign * S.gpm_score_matrix(embeddings, eigenvalues)  # (K, K)
        vs_mix = config.sign * S.gpm_score_vs_mixture(embeddings, eigenvalues)  # (K,)
    else:
        r = embeddings.squeeze(-1)
        score = S.bt_score(r[:, None], r[None, :])
        vs_mix = r - r.mean()
    prob = S.preference_prob(score, config.temperature)
    return RankResult(prob, score, vs_mix, prob.mean(1), forwards)


def rank_from_pair_logits(score: Tensor, tau: float, forwards: int) -> RankResult:
    """PairPM preferences among K responses from the (K, K) classifier logits (diagonal ignored).

    P(y_i ≻ y_j) = σ(z_ij / τ) with the diagonal set to ½; the mixture columns average over j, j = i included.
    """
    score = score.clone().fill_diagonal_(0.0)
    prob = S.preference_prob(score, tau).fill_diagonal_(0.5)
    return RankResult(prob, score, score.mean(1), prob.mean(1), forwards)


def read_checkpoint_meta(path: str | Path) -> dict:
    """The ``genpref.json`` of a checkpoint folder, checked: readable JSON of a supported format version."""
    path = Path(path)
    meta_file = path / CONFIG_NAME
    if not meta_file.is_file():
        raise ConfigError(
            f"{path} is not a genpref preference-model checkpoint (no {CONFIG_NAME}).\n"
            "  fix: pass a folder written by 'genpref rm train' (e.g. OUTPUT_DIR/final); to import the "
            "GPM authors' released weights use genpref.models.paper.from_paper_checkpoint"
        )
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{meta_file}: not valid JSON ({exc}).\n  fix: the file was edited or truncated; restore it from "
            "another copy of the checkpoint (every checkpoints/step-N/model holds one)"
        ) from None
    if not isinstance(meta, dict) or not isinstance(meta.get("model"), dict):
        raise ConfigError(f"{meta_file}: expected an object with a 'model' section.\n  fix: restore the file")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ConfigError(
            f"{meta_file}: unsupported checkpoint format_version {meta.get('format_version')}.\n"
            f"  fix: load it with the genpref version that wrote it (this one reads version {FORMAT_VERSION})"
        )
    return meta
