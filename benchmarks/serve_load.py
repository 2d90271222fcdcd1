"""Load test of `genpref serve` on loopback: N concurrent clients for T seconds, with and without batching.

Each client loops: POST /get_reward (OpenRLHF's format) with one prompt and K responses, wait for the
answer, repeat until T seconds have passed (bounded: no request starts after the deadline, each has a
timeout). Reported per setting: requests/s, p50 and p99 latency, errors, and the server's batch count.
The server runs as a subprocess on 127.0.0.1 only.

    python benchmarks/serve_load.py --output serve_load.json                       # untrained GPM on minilm
    python benchmarks/serve_load.py --model runs/rm_gpm_minilm/final --clients 16 --seconds 30 --output s.json
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import REPO_ROOT, format_table, machine_info, offline_hub, write_json


def _texts(k: int, n_prompts: int = 32) -> list[tuple[str, list[str]]]:
    """(prompt, K responses) from the real UltraFeedback sample when present, else built-in pairs."""
    from genpref.data.load import load_preferences
    from genpref.data.paths import shared_data_dir
    from genpref.data.synthetic import make_synthetic_preferences

    data = shared_data_dir()
    if data is not None:
        rows = load_preferences(
            str(data / "ultrafeedback_binarized_eval200.jsonl.gz"), on_error="skip", rejects_path=os.devnull
        ).examples
    else:
        rows = make_synthetic_preferences(4 * n_prompts, seed=0)
    out = []
    for i in range(n_prompts):
        group = rows[(i * k) % len(rows) : (i * k) % len(rows) + k] or rows[:k]
        prompt = group[0].prompt if isinstance(group[0].prompt, str) else group[0].prompt[-1]["content"]
        responses = [(r.chosen if j % 2 == 0 else r.rejected)[:600] for j, r in enumerate(group)]
        out.append((prompt[:600] + "\n", responses))
    return out


def _default_model(folder: Path) -> str:
    from genpref.models.config import PreferenceModelConfig
    from genpref.models.preference_model import PreferenceModel

    config = PreferenceModelConfig(type="gpm", backbone="minilm", k=2, prompt_gate=True, max_length=256)
    PreferenceModel.from_config(config).save_pretrained(folder)
    return str(folder)


def _start(model: str, batching: bool, args) -> tuple[subprocess.Popen, str]:
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "genpref.cli", "serve", "--model", model, "--host", "127.0.0.1"]
    cmd += [
        "--port",
        str(port),
        "--batching",
        str(batching).lower(),
        "--max_batch_size",
        str(args.max_batch_size),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):  # at most 2 minutes to load the model
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read()[-2000:]}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("server did not start within 2 minutes")


def _load(url: str, texts, clients: int, seconds: float) -> dict:
    import httpx

    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(c: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            i = c
            while time.monotonic() < deadline:
                prompt, responses = texts[i % len(texts)]
                body = {"query": [prompt + r for r in responses], "prompts": [prompt] * len(responses)}
                start = time.perf_counter()
                try:
                    ok = http.post("/get_reward", json=body).status_code == 200
                except httpx.HTTPError:
                    ok = False
                with lock:
                    if ok:
                        latencies.append(time.perf_counter() - start)
                    else:
                        errors[0] += 1
                i += clients

    batches_before = httpx.get(url + "/info").json()["forward_batches"]
    began = time.monotonic()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    latencies.sort()

    def pct(q: float) -> float:
        return (
            1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")
        )

    return {
        "requests": len(latencies),
        "errors": errors[0],
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(latencies) / elapsed, 2),
        "p50_ms": round(pct(0.50), 1),
        "p99_ms": round(pct(0.99), 1),
        "server_batches": httpx.get(url + "/info").json()["forward_batches"] - batches_before,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="checkpoint folder (default: an untrained GPM k=2 + gate on minilm)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=20.0, help="load duration per setting")
    parser.add_argument("--k", type=int, default=4, help="responses per request (one prompt)")
    parser.add_argument("--max_batch_size", type=int, default=32, help="server: sequences per forward")
    parser.add_argument("--output", required=True, help="JSON results")
    args = parser.parse_args()
    offline_hub()
    sys.path.insert(0, str(REPO_ROOT / "src"))
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or _default_model(Path(tmp) / "gpm")
        texts = _texts(args.k)
        rows = []
        for batching in (True, False):
            proc, url = _start(model, batching, args)
            try:
                _load(url, texts, min(args.clients, 2), 2.0)  # warm-up, not reported
                rows.append({"batching": batching, **_load(url, texts, args.clients, args.seconds)})
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    print(
        format_table(
            rows,
            [
                ("batching", "batching", ""),
                ("requests_per_s", "req/s", ".2f"),
                ("p50_ms", "p50 ms", ".1f"),
                ("p99_ms", "p99 ms", ".1f"),
                ("requests", "requests", "d"),
                ("errors", "errors", "d"),
                ("server_batches", "batches", "d"),
            ],
        )
    )
    on, off = rows
    headline = {
        "requests_per_s_batching": on["requests_per_s"],
        "requests_per_s_no_batching": off["requests_per_s"],
        "speedup": round(on["requests_per_s"] / max(off["requests_per_s"], 1e-9), 2),
        "p50_ms_batching": on["p50_ms"],
        "p99_ms_batching": on["p99_ms"],
        "p50_ms_no_batching": off["p50_ms"],
        "p99_ms_no_batching": off["p99_ms"],
    }
    write_json(
        args.output,
        {"headline": headline, "settings": vars(args), "rows": rows, "machine": machine_info()},
    )
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
