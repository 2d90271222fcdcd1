"""Plots of ``genpref bench nash``: category trajectories on the simplex and exploitability per iteration."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CORNERS = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3) / 2]])  # (3, 2): the three options


def to_simplex(distribution) -> np.ndarray:
    """(2,) point of the options' triangle for a distribution over (option₁, option₂, option₃, other):
    the options' shares renormalised (the ``other`` share is plotted separately)."""
    d = np.asarray(distribution[:3], dtype=float)
    d = d / d.sum() if d.sum() > 0 else np.full(3, 1 / 3)
    return d @ CORNERS


def plot_simplex(results: dict, path: Path) -> Path:
    """One column per game: the triangle with every method's trajectory (π_0 circle, π_T square,
    average iterate cross, Nash star) above the oracle exploitability of each iterate."""
    games = list(results["games"].items())
    fig, axes = plt.subplots(2, len(games), figsize=(5.2 * len(games), 8.6), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for col, (name, game) in enumerate(games):
        top, bottom = axes[0, col], axes[1, col]
        top.plot(*np.vstack([CORNERS, CORNERS[:1]]).T, color="black", lw=0.8)
        for corner, label, offset in zip(
            CORNERS, game["categories"][:3], ([-0.06, -0.05], [0.0, -0.05], [-0.05, 0.03])
        ):
            top.text(corner[0] + offset[0], corner[1] + offset[1], label, fontsize=10)
        top.plot(*to_simplex(game["nash"]), marker="*", ms=16, color="gold", mec="black", ls="", label="Nash")
        for i, (method, m) in enumerate(game["methods"].items()):
            colour = colours[i % len(colours)]
            points = np.array([to_simplex(d) for d in m["distributions"]])
            top.plot(
                points[:, 0],
                points[:, 1],
                "-",
                color=colour,
                lw=1.4,
                alpha=0.85,
                label=f"{method} (avg expl. {m['average_exploitability']:.3f})",
            )
            top.plot(*points[0], "o", color=colour, ms=6)
            top.plot(*points[-1], "s", color=colour, ms=6)
            top.plot(*to_simplex(m["average_distribution"]), "X", color=colour, ms=10, mec="black")
            bottom.plot(
                range(len(m["exploitability"])), m["exploitability"], "-o", color=colour, label=method
            )
        top.set_title(f"{name}: o = π_0, □ = π_T, X = average iterate", fontsize=10)
        top.set_aspect("equal")
        top.axis("off")
        top.legend(fontsize=7, loc="upper right")
        bottom.axhline(0.05, color="grey", ls=":", lw=0.8)
        bottom.set_xlabel("iteration")
        bottom.set_ylabel("exploitability (oracle)")
        bottom.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
