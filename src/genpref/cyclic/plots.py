"""PNG plots for the cyclic experiment: learned 2-D preference embeddings and the accuracy table."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402


def _cycles(examples, limit: int) -> list[list]:
    """Group comparisons into cycles by their origin ("...#cycleN:edgeM")."""
    groups = defaultdict(list)
    for ex in examples:
        groups[ex.origin.split(":edge")[0]].append(ex)
    return list(groups.values())[:limit]


def plot_embeddings(checkpoint: Path, examples, path: Path, n_cycles: int = 4) -> Path:
    """Each held-out cycle's responses as points of the learned R^2 embedding (GPM, k = 1), with an
    arrow from winner to loser for every comparison. A cycle the model gets right winds around the origin."""
    from genpref.models.preference_model import PreferenceModel
    from genpref.train.device import default_device

    model = PreferenceModel.from_pretrained(checkpoint, device=default_device())
    cycles = _cycles(examples, n_cycles)
    fig, axes = plt.subplots(1, len(cycles), figsize=(3.2 * len(cycles), 3.6), squeeze=False)
    for ax, cycle in zip(axes[0], cycles):
        texts = list(dict.fromkeys([t for ex in cycle for t in (ex.chosen, ex.rejected)]))
        emb, _ = model.embed([cycle[0].prompt] * len(texts), texts)
        pos = {t: emb[i, :2].tolist() for i, t in enumerate(texts)}
        radius = max(1e-6, float(emb[:, :2].norm(dim=-1).max()))  # unnormalised embeddings: any scale
        if model.config.l2_normalize:
            ax.add_patch(plt.Circle((0, 0), 1.0, fill=False, ls=":", color="grey"))
        ax.plot(0, 0, "+", color="grey")
        for ex in cycle:
            (x0, y0), (x1, y1) = pos[ex.chosen], pos[ex.rejected]
            ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops=dict(arrowstyle="->", color="tab:red"))
        for i, t in enumerate(texts):
            ax.plot(*pos[t], "o", color=f"C{i}")
            x, y = pos[t]
            norm = max((x * x + y * y) ** 0.5, 1e-6)
            ax.text(
                x + 0.14 * radius * x / norm,
                y + 0.14 * radius * y / norm,
                chr(65 + i),
                ha="center",
                va="center",
            )
        lim = 1.35 * radius
        ax.set_xlim(-lim, lim), ax.set_ylim(-lim, lim), ax.set_aspect("equal")
        prompt = cycle[0].prompt if isinstance(cycle[0].prompt, str) else cycle[0].prompt[-1]["content"]
        ax.set_title(prompt[:34] + ("…" if len(prompt) > 34 else ""), fontsize=7)
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle("GPM (k=1) embeddings of held-out cycles; arrows: winner → loser", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_accuracy(rows: list[dict], ceilings: dict, path: Path) -> Path:
    """Grouped bars: held-out accuracy per dataset and model, with the BT ceiling and the 95% target."""
    datasets = list(ceilings)
    models = list(dict.fromkeys(r["model"] for r in rows))
    width = 0.8 / max(len(models), 1)
    fig, ax = plt.subplots(figsize=(1.9 * len(datasets) + 2, 3.6))
    for j, model in enumerate(models):
        values = [
            next((r["eval_accuracy"] for r in rows if r["dataset"] == d and r["model"] == model), 0.0)
            for d in datasets
        ]
        bars = ax.bar(
            [i + (j - (len(models) - 1) / 2) * width for i in range(len(datasets))],
            values,
            width,
            label=model,
        )
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    for i, d in enumerate(datasets):
        ax.hlines(ceilings[d]["bt_ceiling"], i - 0.45, i + 0.45, colors="black", linestyles="--")
    ax.axhline(0.95, color="tab:green", lw=0.8, ls=":", label="95% target")
    ax.set_xticks(
        range(len(datasets)), [d.replace("no_", "no ").replace("_", " ") for d in datasets], fontsize=8
    )
    ax.set_ylim(0, 1.1), ax.set_ylabel("held-out accuracy")
    ax.set_title("Cyclic preferences: dashed = best any BT model can do", fontsize=10)
    ax.legend(fontsize=7, ncol=len(models) + 1, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
