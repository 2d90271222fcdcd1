"""genpref serve: a real server subprocess on 127.0.0.1, answers equal to the Python API, bad requests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from tiny_checkpoints import trained_checkpoint

from genpref.integrations.engine import LocalForwards, group_rewards
from genpref.models.preference_model import PreferenceModel

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

SRC = str(Path(__file__).resolve().parents[1] / "src")
CHAT = [{"role": "user", "content": "Name a colour."}]
PROMPT_TEXTS = ["Q: What is 2 + 2?\nA:", "Q: Name a colour.\nA:"]
RESPONSES = [" 4.", " Four, of course.", " 5.", " Blue.", " Green, I think.", " No."]
OPENRLHF_PROMPTS = [PROMPT_TEXTS[0]] * 3 + [PROMPT_TEXTS[1]] * 3
OPENRLHF_QUERIES = [p + r for p, r in zip(OPENRLHF_PROMPTS, RESPONSES)]
MAX_ITEMS = 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    """`genpref serve` on a tiny gated GPM, as a subprocess on 127.0.0.1; stopped after the module."""
    ckpt = trained_checkpoint("gpm_bert")
    port = _free_port()
    cmd = [sys.executable, "-m", "genpref.cli", "serve", "--model", ckpt, "--port", str(port)]
    cmd += ["--max_items", str(MAX_ITEMS), "--max_wait_ms", "200", "--max_batch_size", "64"]
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):  # bounded start-up wait: 60 s
            if proc.poll() is not None:
                pytest.fail(f"server exited: {proc.stdout.read()}")
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        else:
            pytest.fail("server did not answer /health within 60 s")
        with httpx.Client(base_url=url, timeout=60) as client:
            yield client, PreferenceModel.from_pretrained(ckpt)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_health_and_info(server):
    client, model = server
    assert client.get("/health").json() == {"status": "ok"}
    info = client.get("/info").json()
    assert (info["type"], info["k"], info["tau"], info["prompt_gate"]) == ("gpm", 2, 0.1, True)
    assert info["backbone"] == model.config.backbone and info["max_items"] == MAX_ITEMS


def test_openrlhf_get_reward_equals_rank(server):
    client, model = server
    # OpenRLHF's remote_rm_fn posts {"query", "prompts", "labels"} and reads "rewards"
    body = {"query": OPENRLHF_QUERIES, "prompts": OPENRLHF_PROMPTS, "labels": [""] * 6}
    rewards = torch.tensor(client.post("/get_reward", json=body).json()["rewards"])
    for rows in (slice(0, 3), slice(3, 6)):
        expected = model.rank(OPENRLHF_PROMPTS[rows][0], RESPONSES[rows]).score_vs_mixture
        assert torch.allclose(rewards[rows], expected, atol=1e-5)


def test_score_prob_rank_equal_python_api(server):
    client, model = server
    prompts, a, b = [CHAT, PROMPT_TEXTS[0]], RESPONSES[:2], RESPONSES[2:4]
    body = {"prompts": prompts, "responses_a": a, "responses_b": b}
    scores = torch.tensor(client.post("/score", json=body).json()["scores"])
    probs = torch.tensor(client.post("/prob", json=body).json()["probs"])
    assert torch.allclose(scores, model.score(prompts, a, b), atol=1e-5)
    assert torch.allclose(probs, model.prob(prompts, a, b), atol=1e-5)
    ranked = client.post("/rank", json={"prompt": CHAT, "responses": RESPONSES[3:]}).json()
    r = model.rank(CHAT, RESPONSES[3:])
    assert torch.allclose(torch.tensor(ranked["prob_matrix"]), r.prob_matrix, atol=1e-5)
    assert torch.allclose(torch.tensor(ranked["score_vs_mixture"]), r.score_vs_mixture, atol=1e-5)
    assert ranked["ranking"] == r.score_vs_mixture.argsort(descending=True).tolist()


BAD_REQUESTS = [
    ("/get_reward", {"query": [1, 2], "prompts": ["a", "b"]}, 422, "query[0]"),
    ("/get_reward", {"query": [], "prompts": []}, 422, "query"),
    ("/get_reward", {"query": ["a b"]}, 422, "prompts"),  # a GPM reward needs the group's prompt
    ("/get_reward", {"query": ["a b", "c"], "prompts": ["a"]}, 422, "equal lengths"),
    ("/get_reward", {"query": ["x y"], "prompts": ["a"]}, 422, "query[0]"),
    ("/get_reward", {"query": ["a b"] * (MAX_ITEMS + 1), "prompts": ["a"] * (MAX_ITEMS + 1)}, 413, "query"),
    ("/prob", {"prompts": ["p"], "responses_a": ["a"], "responses_b": "b"}, 422, "responses_b"),
    (
        "/prob",
        {"prompts": [[{"role": "robot", "content": "hi"}]], "responses_a": ["a"], "responses_b": ["b"]},
        422,
        "role",
    ),
    ("/rank", {"prompt": "p", "responses": ["only one"]}, 422, "responses"),
    ("/rank", {"responses": ["a", "b"]}, 422, "prompt"),
]


@pytest.mark.parametrize("path,body,status,field", BAD_REQUESTS)
def test_bad_requests_name_the_field_and_server_stays_up(server, path, body, status, field):
    client, _ = server
    answer = client.post(path, json=body)
    assert answer.status_code == status and field in answer.json()["error"], answer.text
    assert client.get("/health").status_code == 200


def test_malformed_json_and_oversize_body(server):
    client, model = server
    answer = client.post(
        "/get_reward", content=b'{"query": ["a", ', headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400 and "JSON" in answer.json()["error"]
    huge = client.post(
        "/get_reward", content=b"x" * (17 * 2**20), headers={"content-type": "application/json"}
    )
    assert huge.status_code == 413
    # still serving, with the right numbers
    body = {"query": OPENRLHF_QUERIES[:3], "prompts": OPENRLHF_PROMPTS[:3]}
    expected = model.rank(OPENRLHF_PROMPTS[0], RESPONSES[:3]).score_vs_mixture
    assert torch.allclose(
        torch.tensor(client.post("/get_reward", json=body).json()["rewards"]), expected, atol=1e-5
    )


def test_concurrent_requests_are_batched_and_exact(server):
    """16 concurrent requests (bounded: one round): each answer equals the request served alone, and the
    batcher ran fewer batches than requests."""
    client, model = server
    bodies = [
        {"query": OPENRLHF_QUERIES[i % 3 :: 1][:3], "prompts": OPENRLHF_PROMPTS[i % 3 :: 1][:3]}
        for i in range(16)
    ]
    before = client.get("/info").json()["forward_batches"]
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda b: client.post("/get_reward", json=b).json()["rewards"], bodies))
    batches = client.get("/info").json()["forward_batches"] - before
    assert batches < len(bodies)
    fw = LocalForwards(model)
    for body, got in zip(bodies, answers):
        responses = [q[len(p) :] for q, p in zip(body["query"], body["prompts"])]
        expected = group_rewards(model, fw, body["prompts"], responses)
        assert torch.allclose(torch.tensor(got), expected, atol=1e-5)


@pytest.mark.parametrize("kind", ["bt_bert", "pairpm_bert"])
def test_bt_and_pairpm_in_process(kind):
    """The same app in-process (FastAPI's TestClient): BT without prompts, PairPM's group win-rate."""
    from fastapi.testclient import TestClient

    from genpref.serve.app import create_app
    from genpref.serve.config import ServeArgs

    model = PreferenceModel.from_pretrained(trained_checkpoint(kind))
    with TestClient(create_app(model, ServeArgs(model="-"))) as client:
        body = {"query": OPENRLHF_QUERIES, "prompts": OPENRLHF_PROMPTS}
        got = torch.tensor(client.post("/get_reward", json=body).json()["rewards"])
        for rows in (slice(0, 3), slice(3, 6)):
            r = model.rank(OPENRLHF_PROMPTS[rows][0], RESPONSES[rows])
            if kind == "bt_bert":
                expected = model.embed(OPENRLHF_PROMPTS[rows], RESPONSES[rows])[0].squeeze(-1)
            else:
                expected = r.prob_vs_mixture
            assert torch.allclose(got[rows], expected, atol=1e-5)
        no_prompts = client.post("/get_reward", json={"query": OPENRLHF_QUERIES[:2]})
        if kind == "bt_bert":  # each query scored as one text
            expected = model.embed(["", ""], OPENRLHF_QUERIES[:2])[0].squeeze(-1)
            assert torch.allclose(torch.tensor(no_prompts.json()["rewards"]), expected, atol=1e-5)
        else:
            assert no_prompts.status_code == 422 and "prompts" in no_prompts.json()["error"]
