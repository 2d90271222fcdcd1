"""Plain-text tables for ``genpref rm eval`` and ``genpref rm compare`` results."""

from __future__ import annotations


def _acc(m: dict) -> str:
    low, high = m["ci95"]
    return f"{m['accuracy']:.4f} [{low:.3f}, {high:.3f}]"


def format_eval(results: dict) -> str:
    """The tables of a :func:`genpref.eval.judge_eval.judge_rows` result."""
    lines = []
    if "overall" in results:
        lines.append(
            f"{'subset':<24}{'n':>6}  {'accuracy [95% CI]':<24}{'longer wins':>12}"
            f"{'P(chosen)':>11}{'log-loss':>10}{'ECE':>8}"
        )
        for name, m in [("all", results["overall"]), *results["subsets"].items()]:
            lines.append(
                f"{name:<24}{m['n']:>6}  {_acc(m):<24}{m['length_baseline']['accuracy']:>12.4f}"
                f"{m['mean_prob_chosen']:>11.4f}{m['log_loss']:>10.4f}{m['ece']:>8.4f}"
            )
        lines.append("")
        lines.append("length bias (accuracy by whether the preferred response is longer; chars):")
        for name, m in results["length_bias"].items():
            lines.append(f"  {name:<20}{m['n']:>6} rows ({m['share']:.0%})  {_acc(m) if m['n'] else '-'}")
        lb = results["length_baseline"]
        lines.append(f"'longer response wins' baseline on the same rows: {_acc(lb)}")
    for section, value in results.get("rewardbench", {}).items():
        lines.append(f"RewardBench {section}: {value:.4f}")
    if "pairpm_consistency" in results:
        c = results["pairpm_consistency"]
        lines.append(
            f"PairPM order consistency: mean |P(a≻b)+P(b≻a)-1| = {c['mean_abs_deviation']:.4f}, "
            f"max {c['max_abs_deviation']:.4f}, winner flips with order in {c['order_disagreement']:.2%} of rows"
        )
    if "ranking" in results:
        r = results["ranking"]
        lines.append(
            f"ranking vs given scores ({r['n']} prompts): Kendall tau-b {r['kendall_tau']:.4f}, "
            f"Spearman rho {r['spearman_rho']:.4f} (over {r['n_correlation']} prompts with untied scores), "
            f"top-1 {_acc(r['top1'])}"
        )
    if "best_of_n" in results:
        b = results["best_of_n"]
        label = f"best-of-{b['best_of']}" if "best_of" in b else "best-of-N"
        lines.append(
            f"{label} ({b['n']} rows): {_acc(b)}, chance {b['chance']:.3f}, "
            f"longest-wins baseline {b['length_baseline']['accuracy']:.4f}"
        )
        for name, m in b.get("subsets", {}).items():
            lines.append(f"  {name:<22}{m['n']:>6}  {_acc(m)}  longest wins {m['length_baseline']:.4f}")
    return "\n".join(lines)


def format_compare(comparison: dict, name_a: str, name_b: str) -> str:
    """One block per compared section: accuracies, McNemar and the bootstrap interval of B − A."""
    lines = [f"A = {name_a}", f"B = {name_b}"]
    for section, c in comparison.items():
        m, boot = c["mcnemar"], c["bootstrap"]
        low, high = boot["ci95"]
        lines.append(
            f"{section}: n {m['n']}  accuracy A {c['accuracy_a']:.4f}  B {c['accuracy_b']:.4f}  "
            f"B − A {boot['difference']:+.4f} [95% bootstrap {low:+.4f}, {high:+.4f}]"
        )
        lines.append(
            f"  McNemar ({m['method']}): only A right {m['only_a_correct']}, only B right "
            f"{m['only_b_correct']}, p = {m['p_value']:.4g}"
        )
    return "\n".join(lines)
