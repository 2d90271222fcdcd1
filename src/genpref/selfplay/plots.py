"""Per-iteration self-play plot: win-rates against π_0 and π_t (every judge, 95% intervals), response
length and the share cut at the token cap, and the step actually taken (KL, fit)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _judge_series(rows: list[dict]) -> dict[str, list[dict]]:
    """Evaluation rows per judge name: the training judge first, then ``eval.judges``."""
    series = {"training judge": [r for r in rows]}
    for path in rows[0].get("judges", {}):
        series[Path(path).parent.name or path] = [r["judges"][path] for r in rows]
    return series


def plot_iterations(rows: list[dict], path: Path) -> Path:
    its = [r["iteration"] for r in rows]
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(12, 3.4))
    for i, (name, evals) in enumerate(_judge_series(rows).items()):
        color = f"C{i}"
        wr = [e["vs_policy0"]["winrate"] for e in evals]
        err = [
            [e["vs_policy0"]["winrate"] - e["vs_policy0"]["ci_low"] for e in evals],
            [e["vs_policy0"]["ci_high"] - e["vs_policy0"]["winrate"] for e in evals],
        ]
        a.errorbar(its, wr, yerr=err, marker="o", capsize=4, color=color, label=f"{name}: vs π0")
        a.plot(
            its,
            [e["vs_previous"]["winrate"] for e in evals],
            ls=":",
            marker="^",
            color=color,
            label=f"{name}: vs π_t",
        )
        a.plot(
            its,
            [e["vs_policy0"]["lc_winrate"] for e in evals],
            ls="--",
            marker="s",
            color=color,
            alpha=0.6,
            label=f"{name}: LC vs π0",
        )
    a.axhline(0.5, color="grey", lw=0.8, ls=":")
    a.set_xlabel("iteration"), a.set_ylabel("win-rate of π_{t+1}"), a.legend(fontsize=6)
    a.set_xticks(its)
    w0 = [r["vs_policy0"] for r in rows]
    b.plot(
        [0, *its], [w0[0]["mean_len_old"], *[w["mean_len_new"] for w in w0]], marker="o", label="mean tokens"
    )
    b.set_xlabel("iteration"), b.set_ylabel("mean response tokens"), b.set_xticks([0, *its])
    b2 = b.twinx()
    b2.plot(
        [0, *its],
        [w0[0]["cap_share_old"], *[w["cap_share_new"] for w in w0]],
        marker="s",
        color="C3",
        ls="--",
    )
    b2.set_ylabel("share cut at the token cap", color="C3"), b2.set_ylim(0, 1)
    c.plot(its, [r["fit"]["kl_new_old"] for r in rows], marker="o", label="KL(π_t+1‖π_t) (nats)")
    c.set_xlabel("iteration"), c.set_ylabel("KL estimate (nats)"), c.set_xticks(its)
    c2 = c.twinx()
    c2.plot(its, [r["fit"]["corr"] for r in rows], marker="s", color="C2", ls="--")
    c2.set_ylabel("fit: corr(log-ratio, target)", color="C2"), c2.set_ylim(-1, 1)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
