"""genpref rm export: BT → AutoModelForSequenceClassification (loaded without genpref), GPM → paper layout."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest
import torch
from tiny_checkpoints import trained_checkpoint

from genpref.cli import main
from genpref.errors import ConfigError
from genpref.models.export import to_paper
from genpref.models.paper import from_paper_checkpoint
from genpref.models.preference_model import PreferenceModel

CONVERSATIONS = [
    [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "4."}],
    [
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "Five, I believe, or so."},
    ],
    [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."}],
]

# Runs in a fresh interpreter where importing genpref fails: only transformers reads the folder.
NO_GENPREF = """
import json, sys
sys.modules["genpref"] = None  # any genpref import now raises ImportError
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
folder, conversations = sys.argv[1], json.loads(sys.argv[2])
tok = AutoTokenizer.from_pretrained(folder)
model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
texts = [tok.apply_chat_template(c, tokenize=False).rstrip() for c in conversations]
batch = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
with torch.no_grad():
    print(json.dumps(model(**batch).logits[:, 0].tolist()))
"""


def test_bt_hf_seqcls_loads_without_genpref_and_gives_the_same_rewards(tmp_path):
    ckpt = trained_checkpoint("bt_llama")
    out = tmp_path / "seqcls"
    assert main(["rm", "export", "--model", ckpt, "--output", str(out), "--format", "hf-seqcls"]) == 0
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(out).num_labels == 1
    run = subprocess.run(
        [sys.executable, "-c", NO_GENPREF, str(out), json.dumps(CONVERSATIONS)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    exported = torch.tensor(json.loads(run.stdout.strip().splitlines()[-1]))
    model = PreferenceModel.from_pretrained(ckpt)
    prompts, responses = [c[:1] for c in CONVERSATIONS], [c[1]["content"] for c in CONVERSATIONS]
    expected = model.embed(prompts, responses)[0].squeeze(-1) / model.config.temperature
    assert torch.allclose(exported, expected, atol=1e-4), (exported, expected)
    assert exported.std() > 0  # rewards differ between responses: not a constant head


def test_hf_seqcls_refuses_gpm_and_encoders(tmp_path):
    for kind, message in (("gpm_llama", "BT"), ("bt_bert", "decoder")):
        with pytest.raises(ConfigError, match=message):
            from genpref.models.export import export_checkpoint

            export_checkpoint(trained_checkpoint(kind), str(tmp_path / kind), "hf-seqcls")
        assert not (tmp_path / kind).exists()
    assert (
        main(["rm", "export", "--model", trained_checkpoint("bt_bert"), "--output", str(tmp_path / "x")]) == 2
    )


@pytest.mark.parametrize("sign", [1, -1])
def test_gpm_paper_layout_round_trip(tmp_path, sign):
    model = PreferenceModel.from_pretrained(trained_checkpoint("gpm_llama"))
    model.config = replace(model.config, sign=sign)  # sign −1 is folded into the exported value head
    out = to_paper(model, tmp_path / "paper")
    from safetensors.torch import load_file

    keys = set(load_file(out / "model.safetensors"))
    assert {"value_head.weight", "prompt_head.weight"} <= keys and all(
        k.startswith(("model.", "value_head", "prompt_head")) for k in keys
    )
    back = from_paper_checkpoint(out, max_length=model.config.max_length)
    assert (back.config.k, back.config.prompt_gate, back.config.temperature) == (
        2,
        True,
        model.config.temperature,
    )
    prompts = [c[:1] for c in CONVERSATIONS]
    a = [c[1]["content"] for c in CONVERSATIONS]
    b = ["No idea.", "4", "Red, maybe."]
    assert torch.allclose(back.score(prompts, a, b), model.score(prompts, a, b), atol=1e-5)
    assert torch.allclose(
        back.rank(prompts[2], a).prob_matrix, model.rank(prompts[2], a).prob_matrix, atol=1e-5
    )


def test_paper_layout_refuses_bt(tmp_path):
    with pytest.raises(ConfigError, match="GPM"):
        to_paper(PreferenceModel.from_pretrained(trained_checkpoint("bt_llama")), tmp_path / "p")
