"""vLLM generation backend (optional extra ``genpref[vllm]``, GPU machines).

Same interface and outputs as ``TransformersGenerator``: for each prompt, n ``Sample``s whose ``logp``
is log π(y|x) of the *unwarped* policy. vLLM (V1 engine) returns, with ``logprobs_mode="raw_logprobs"``
(its default, set explicitly here), the log-softmax of the raw logits before temperature, penalties and
top-p; with ``SamplingParams(logprobs=0)`` each step carries the sampled token's log-prob, which we sum.

Prompts are passed as token ids produced by genpref's own tokenisation (``prompt_ids``), so the chat
template is applied once and the training sequences are exactly prompt ids + generated ids.

What was verified where: the mapping from vLLM's output objects to ``Sample`` is unit-tested on CPU
with stand-in objects (tests/test_vllm_mapping.py); running vLLM itself needs a CUDA GPU and was not
possible on the CPU machines this project is developed on (see docs/scale-out.md).
"""

from __future__ import annotations

from genpref.errors import ConfigError
from genpref.selfplay.generate import Sample, SamplingConfig, prompt_ids


def samples_from_request_output(request_output, eos_token_id: int, decode) -> list[Sample]:
    """Map one vLLM ``RequestOutput`` (n completions) to genpref ``Sample``s.

    Args:
        request_output: has ``.outputs``, each with ``token_ids``, ``logprobs`` (one {token_id: Logprob}
            dict per generated token, Logprob having ``.logprob``) and ``finish_reason``.
        eos_token_id: the tokenizer's EOS id.
        decode: token ids → text.
    """
    samples = []
    for completion in request_output.outputs:
        ids = list(completion.token_ids)
        if completion.logprobs is None or len(completion.logprobs) != len(ids):
            raise ValueError("vLLM returned no per-token log-probs; request SamplingParams(logprobs=0)")
        logp = sum(float(step[token].logprob) for step, token in zip(completion.logprobs, ids))
        finished = completion.finish_reason == "stop" and bool(ids) and ids[-1] == eos_token_id
        samples.append(Sample(text=decode(ids).strip(), token_ids=ids, logp=logp, finished=finished))
    return samples


class VLLMGenerator:
    def __init__(
        self,
        model_path: str,
        sampling: SamplingConfig,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.85,
    ) -> None:
        try:
            from vllm import LLM
        except ImportError as exc:
            raise ConfigError(
                "generator=vllm needs vLLM.\n  fix: pip install 'genpref[vllm]' on a CUDA machine, "
                "or use generator=transformers"
            ) from exc
        self.llm = LLM(
            model=model_path,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            logprobs_mode="raw_logprobs",
        )
        self.tokenizer = self.llm.get_tokenizer()
        self.sampling = sampling

    def generate(self, prompts, n: int, seed: int, progress: bool = True) -> list[list[Sample]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        params = SamplingParams(
            n=n,
            temperature=self.sampling.temperature,
            top_p=self.sampling.top_p,
            max_tokens=self.sampling.max_new_tokens,
            seed=seed,
            logprobs=0,
        )
        requests = [TokensPrompt(prompt_token_ids=prompt_ids(self.tokenizer, p)) for p in prompts]
        outputs = self.llm.generate(requests, params, use_tqdm=progress)
        decode = lambda ids: self.tokenizer.decode(ids, skip_special_tokens=True)  # noqa: E731
        return [samples_from_request_output(o, self.tokenizer.eos_token_id, decode) for o in outputs]
