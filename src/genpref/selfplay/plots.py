"""Per-iteration self-play plot: win-rate against π_0 (with its 95% interval) and mean response length."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_iterations(rows: list[dict], path: Path) -> Path:
    its = [r["iteration"] for r in rows]
    wr = [r["vs_policy0"]["winrate"] for r in rows]
    low = [r["vs_policy0"]["winrate"] - r["vs_policy0"]["ci_low"] for r in rows]
    high = [r["vs_policy0"]["ci_high"] - r["vs_policy0"]["winrate"] for r in rows]
    lc = [r["vs_policy0"]["lc_winrate"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.2))
    a.errorbar(its, wr, yerr=[low, high], marker="o", capsize=4, label="win-rate vs π0")
    a.plot(its, lc, marker="s", ls="--", label="length-controlled")
    a.axhline(0.5, color="grey", lw=0.8, ls=":")
    a.set_xlabel("iteration"), a.set_ylabel("judge win-rate"), a.legend(fontsize=8)
    a.set_xticks(its)
    b.plot(
        [0, *its],
        [rows[0]["vs_policy0"]["mean_len_old"], *[r["vs_policy0"]["mean_len_new"] for r in rows]],
        marker="o",
    )
    b.set_xlabel("iteration"), b.set_ylabel("mean response tokens"), b.set_xticks([0, *its])
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
