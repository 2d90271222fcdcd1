"""Intransitivity diagnostics for a set of pairwise comparisons, and the best any scalar model can do.

A comparison ``(winner, loser, weight)`` says ``winner ≻ loser``; items are any hashable ids (here a
``(prompt, response)`` identity). A scalar (Bradley-Terry) model ranks items by one number, so it gets
a comparison right iff the winner is ranked strictly above the loser (ties count as wrong). Its best
possible weighted accuracy (``bt_ceiling``) is therefore the weight of a *maximum acyclic subgraph* of
the comparison graph over the total weight: the complement of a minimum feedback arc set. This is the
quantity behind Zhang et al. (arXiv 2410.02197), Table 1: on a cyclic dataset A ≻ B ≻ C ≻ A every
scalar model gets at most 2 of the 3 comparisons right, while a general preference model can get all.

How the ceiling is computed (exact wherever it is cheap, bracketed elsewhere):

1. Opposite comparisons of one pair (a ≻ b with weight w, b ≻ a with weight w'): any order gets exactly
   one direction right, so ``min(w, w')`` is always earned and only the excess ``|w - w'|`` (the *net*
   edge) depends on the order.
2. Net edges between different strongly connected components of the net graph can all be satisfied
   (order the components topologically), so the problem splits into one subproblem per component.
3. A component of at most ``exact_max_items`` items is solved exactly by dynamic programming over
   subsets (:func:`max_acyclic_weight`). A larger one gets an upper bound (its weight minus a packing
   of directed cycles: every ranking loses at least the packed weight) and a lower bound (the value of
   a heuristic order: net wins, then moving single items while that helps).

Reported: ``bt_ceiling`` (exact, or an upper bound when ``bt_ceiling_exact`` is False) and ``bt_lower``
(the value of an actual ranking), so the true ceiling lies in ``[bt_lower, bt_ceiling]``.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Hashable, Iterable
from dataclasses import asdict, dataclass

import numpy as np

from genpref.data.types import PreferenceExample, Prompt, RankingExample
from genpref.errors import DataError

Comparison = tuple
"""``(winner, loser)`` or ``(winner, loser, weight)``; ``weight`` defaults to 1.0."""

_DENSE_SEARCH_MAX_ITEMS = 2000  # local search on a dense matrix above this would need too much memory
_LOCAL_SEARCH_PASSES = 50
_PACKING_BUDGET = 20_000_000  # edge visits; a partial packing still gives a valid (looser) bound


@dataclass
class CycleReport:
    """Intransitivity of a comparison set and the accuracy ceiling of any scalar (BT) model."""

    n_items: int
    n_comparisons: int
    n_pairs: int
    """Distinct unordered pairs compared."""
    n_components: int
    """Connected components of the (undirected) comparison graph."""
    largest_component: int
    """Items in the largest component."""
    three_cycles: int
    """Directed 3-cycles a ≻ b ≻ c ≻ a of the majority graph, each counted once (tied pairs: no edge)."""
    triples: int
    """Item triples with all three pairs compared."""
    intransitive_fraction: float
    """``three_cycles / triples`` (0 when there are no triples)."""
    bt_ceiling: float
    """Best weighted accuracy of any strict ranking (an upper bound if not ``bt_ceiling_exact``)."""
    bt_ceiling_exact: bool
    """Whether every cyclic block was solved exactly (had at most ``exact_max_items`` items)."""
    bt_lower: float
    """Weighted accuracy of a heuristic ranking: the true ceiling lies in ``[bt_lower, bt_ceiling]``."""
    largest_cyclic_block: int = 0
    """Items in the largest strongly connected block of the net majority graph (0 or 1: acyclic)."""

    def summary(self) -> str:
        ceiling = f"{self.bt_ceiling:.4f}" + ("" if self.bt_ceiling_exact else " (upper bound)")
        lines = [
            f"items {self.n_items}, comparisons {self.n_comparisons}, distinct pairs {self.n_pairs}",
            f"components {self.n_components} (largest {self.n_items and self.largest_component} items), "
            f"largest cyclic block {self.largest_cyclic_block} items",
            f"3-cycles {self.three_cycles} of {self.triples} fully compared triples "
            f"(intransitive fraction {self.intransitive_fraction:.4f})",
            f"best accuracy of any scalar (BT) model: {ceiling}",
        ]
        if not self.bt_ceiling_exact:
            lines.append(f"  a heuristic ranking reaches {self.bt_lower:.4f}: the ceiling lies in between")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------- building comparisons


def prompt_key(prompt: Prompt) -> Hashable:
    """A hashable identity of a prompt (text, or the tuple of its ``(role, content)`` messages)."""
    if isinstance(prompt, str):
        return prompt
    return tuple((m["role"], m["content"]) for m in prompt)


def comparisons_from_examples(examples: Iterable[PreferenceExample]) -> list[Comparison]:
    """Weighted comparisons between ``(prompt key, response)`` items, from pairwise examples.

    A label is P(chosen ≻ rejected): the example gives ``chosen ≻ rejected`` with weight ``label`` and
    ``rejected ≻ chosen`` with weight ``1 - label`` (zero-weight directions are left out). A hard label
    0 therefore flips the pair; a soft label (PairPM style) splits its weight between both directions.
    """
    comparisons: list[Comparison] = []
    for example in examples:
        key = prompt_key(example.prompt)
        chosen, rejected = (key, example.chosen), (key, example.rejected)
        if chosen == rejected:
            continue  # identical responses carry no preference
        if example.label > 0.0:
            comparisons.append((chosen, rejected, float(example.label)))
        if example.label < 1.0:
            comparisons.append((rejected, chosen, 1.0 - float(example.label)))
    return comparisons


def comparisons_from_rankings(rankings: Iterable[RankingExample]) -> list[Comparison]:
    """One comparison (weight 1) per pair of responses with distinct scores; the higher score wins."""
    comparisons: list[Comparison] = []
    for ranking in rankings:
        if ranking.scores is None:
            raise DataError("ranking has no scores to order its responses", source=ranking.origin or None)
        key = prompt_key(ranking.prompt)
        for i, (text_i, score_i) in enumerate(zip(ranking.responses, ranking.scores)):
            for text_j, score_j in zip(ranking.responses[i + 1 :], ranking.scores[i + 1 :]):
                if score_i == score_j or text_i == text_j:
                    continue
                winner, loser = (text_i, text_j) if score_i > score_j else (text_j, text_i)
                comparisons.append(((key, winner), (key, loser), 1.0))
    return comparisons


# ---------------------------------------------------------------- exact maximum acyclic subgraph


def max_acyclic_weight(n: int, weights: dict[tuple[int, int], float]) -> float:
    """Exact maximum over orders of items ``0..n-1`` of the weight of edges ``(i, j)`` with i above j.

    Dynamic programming over subsets: ``best[T] = max over v in T of best[T - v] + gain(T - v, v)``,
    where placing ``v`` just below the items of ``T - v`` earns every edge ``u → v`` with ``u`` in ``T``.
    The gains of a whole popcount layer are one matrix product, so the cost is O(2^n n^2) flops and
    O(2^n) memory (plus one layer); use it for n up to about 20.
    """
    if n > 24:
        raise ValueError(f"max_acyclic_weight is exponential in n; n={n} is too large (use n <= 24)")
    if n <= 1:
        return 0.0
    w = np.zeros((n, n))
    for (i, j), value in weights.items():
        if i != j:
            w[i, j] += value
    bit = 1 << np.arange(n)  # (n,)
    masks = np.arange(1 << n)  # (2^n,)
    popcount = np.zeros(1 << n, dtype=np.int64)
    for b in range(n):
        popcount += (masks >> b) & 1
    layers = np.split(np.argsort(popcount, kind="stable"), np.cumsum(np.bincount(popcount))[:-1])
    best = np.zeros(1 << n)
    for layer in layers[1:]:
        member = ((layer[:, None] >> np.arange(n)) & 1).astype(bool)  # (C, n): v in T
        gain = member.astype(w.dtype) @ w  # (C, n): sum over u in T of w[u, v]; w[v, v] = 0
        candidate = np.where(member, best[layer[:, None] ^ bit] + gain, -np.inf)  # (C, n)
        best[layer] = candidate.max(axis=1)
    return float(best[-1])


# ---------------------------------------------------------------- bounds for large blocks


def _order_value(order: list[int], edges: dict[tuple[int, int], float]) -> float:
    position = {item: p for p, item in enumerate(order)}
    return sum(w for (u, v), w in edges.items() if position[u] < position[v])


def _heuristic_order(n: int, edges: dict[tuple[int, int], float]) -> list[int]:
    """Items by net wins (out-weight minus in-weight), then single-item moves while they help."""
    net = [0.0] * n
    for (u, v), w in edges.items():
        net[u] += w
        net[v] -= w
    order = sorted(range(n), key=lambda i: (-net[i], i))
    if n > _DENSE_SEARCH_MAX_ITEMS:
        return order
    w = np.zeros((n, n))
    for (u, v), value in edges.items():
        w[u, v] += value
    for _ in range(_LOCAL_SEARCH_PASSES):
        improved = False
        for item in list(order):
            arr = np.asarray(order)
            i = order.index(item)
            # d[x] = change when `item` moves from just below order[x] to just above it.
            d = w[item, arr] - w[arr, item]  # (n,)
            up = np.cumsum(d[:i][::-1])[::-1]  # up[j]: move item to position j < i
            down = -np.cumsum(d[i + 1 :])  # down[k]: move item to position i + 1 + k
            gains = np.concatenate([up, [0.0], down])
            j = int(np.argmax(gains))
            if gains[j] > 1e-12:
                order.pop(i)
                order.insert(j, item)
                improved = True
        if not improved:
            break
    return order


def _cycle_packing(n: int, edges: dict[tuple[int, int], float]) -> float:
    """Weight of a packing of directed cycles (each takes its bottleneck from every edge it uses).

    Every ranking leaves at least one edge of each cycle unsatisfied, and the packed amounts never
    exceed an edge's weight, so the packed total is a lower bound on what any ranking loses (a feasible
    dual of the cycle-covering LP). Cycles are found shortest first, by breadth-first search, until
    none is left or the work budget is spent (the bound stays valid, only looser).
    """
    residual: dict[int, dict[int, float]] = defaultdict(dict)
    for (u, v), w in edges.items():
        if w > 0:
            residual[u][v] = w
    packed, work = 0.0, 0
    for start in range(n):
        while work < _PACKING_BUDGET:
            parent = {start: None}
            queue, found = deque([start]), None
            while queue and found is None:
                u = queue.popleft()
                work += len(residual[u])
                for v in residual[u]:
                    if v == start:
                        found = u
                        break
                    if v not in parent:
                        parent[v] = u
                        queue.append(v)
            if found is None:
                break  # no cycle through `start`; removing weight never creates one later
            cycle, node = [(found, start)], found
            while parent[node] is not None:
                cycle.append((parent[node], node))
                node = parent[node]
            bottleneck = min(residual[u][v] for u, v in cycle)
            packed += bottleneck
            for u, v in cycle:
                residual[u][v] -= bottleneck
                if residual[u][v] <= 1e-12:
                    del residual[u][v]
    return packed


# ---------------------------------------------------------------- graph structure


def _strong_components(n: int, successors: list[list[int]]) -> list[int]:
    """Component id of every node (iterative Tarjan)."""
    index, low, comp = [-1] * n, [0] * n, [-1] * n
    on_stack, stack, counter, n_comp = [False] * n, [], 0, 0
    for root in range(n):
        if index[root] >= 0:
            continue
        work = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack[node] = True
            if child < len(successors[node]):
                work.append((node, child + 1))
                nxt = successors[node][child]
                if index[nxt] < 0:
                    work.append((nxt, 0))
                elif on_stack[nxt]:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                while True:
                    member = stack.pop()
                    on_stack[member] = False
                    comp[member] = n_comp
                    if member == node:
                        break
                n_comp += 1
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return comp


def _weak_components(n: int, pairs: Iterable[tuple[int, int]]) -> list[int]:
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for u, v in pairs:
        ru, rv = find(u), find(v)
        if ru != rv:
            parent[ru] = rv
    return [find(x) for x in range(n)]


def _count_triangles(n: int, net: dict[tuple[int, int], float]) -> tuple[int, int]:
    """``(fully compared triples, directed 3-cycles of the majority graph)``; ``net`` keyed by i < j."""
    neighbours: list[set[int]] = [set() for _ in range(n)]
    for i, j in net:
        neighbours[i].add(j)
        neighbours[j].add(i)
    rank = sorted(range(n), key=lambda x: (len(neighbours[x]), x))
    position = {node: p for p, node in enumerate(rank)}
    forward = [{v for v in neighbours[u] if position[v] > position[u]} for u in range(n)]

    def beats(a: int, b: int) -> int:  # +1 if a wins the majority of the pair, -1 if b, 0 if tied
        value = net[(a, b)] if a < b else -net[(b, a)]
        return (value > 0) - (value < 0)

    triples = cycles = 0
    for u in range(n):
        for v in forward[u]:
            for x in forward[u] & forward[v]:
                triples += 1
                d = beats(u, v)
                if d != 0 and d == beats(v, x) == beats(x, u):
                    cycles += 1
    return triples, cycles


# ---------------------------------------------------------------- the analysis


def analyze_comparisons(comparisons: Iterable[Comparison], *, exact_max_items: int = 16) -> CycleReport:
    """Intransitivity counts and the scalar-model accuracy ceiling of ``comparisons`` (see module doc)."""
    index: dict[Hashable, int] = {}
    directed: dict[tuple[int, int], float] = defaultdict(float)
    n_comparisons, total = 0, 0.0
    for comparison in comparisons:
        winner, loser = comparison[0], comparison[1]
        weight = float(comparison[2]) if len(comparison) > 2 else 1.0
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"comparison weight must be finite and >= 0, got {weight} in {comparison!r}")
        if winner == loser:
            raise ValueError(f"an item compared with itself: {winner!r}")
        u, v = index.setdefault(winner, len(index)), index.setdefault(loser, len(index))
        directed[(u, v)] += weight
        n_comparisons += 1
        total += weight
    n = len(index)

    base = 0.0  # earned by every order: the smaller side of each pair
    net: dict[tuple[int, int], float] = {}  # keyed by (i, j) with i < j: weight(i≻j) - weight(j≻i)
    for u, v in directed:
        i, j = min(u, v), max(u, v)
        if (i, j) in net:
            continue
        forward, backward = directed.get((i, j), 0.0), directed.get((j, i), 0.0)
        base += min(forward, backward)
        net[(i, j)] = forward - backward

    weak = _weak_components(n, net)
    sizes = defaultdict(int)
    for root in weak:
        sizes[root] += 1
    triples, cycles = _count_triangles(n, net)

    successors: list[list[int]] = [[] for _ in range(n)]
    net_edges: dict[tuple[int, int], float] = {}
    for (i, j), value in net.items():
        if value != 0:
            u, v = (i, j) if value > 0 else (j, i)
            successors[u].append(v)
            net_edges[(u, v)] = abs(value)
    strong = _strong_components(n, successors)
    blocks: dict[int, dict[tuple[int, int], float]] = defaultdict(dict)
    satisfiable = 0.0  # net edges between blocks: all satisfied by a topological order of the blocks
    for (u, v), w in net_edges.items():
        if strong[u] == strong[v]:
            blocks[strong[u]][(u, v)] = w
        else:
            satisfiable += w
    members: dict[int, list[int]] = defaultdict(list)
    for node, block in enumerate(strong):
        members[block].append(node)

    upper = lower = base + satisfiable
    exact = True
    for block, edges in blocks.items():
        local = {node: k for k, node in enumerate(members[block])}
        local_edges = {(local[u], local[v]): w for (u, v), w in edges.items()}
        size = len(local)
        if size <= exact_max_items:
            value = max_acyclic_weight(size, local_edges)
            upper, lower = upper + value, lower + value
        else:
            exact = False
            upper += sum(local_edges.values()) - _cycle_packing(size, local_edges)
            lower += _order_value(_heuristic_order(size, local_edges), local_edges)

    return CycleReport(
        n_items=n,
        n_comparisons=n_comparisons,
        n_pairs=len(net),
        n_components=len(sizes),
        largest_component=max(sizes.values(), default=0),
        three_cycles=cycles,
        triples=triples,
        intransitive_fraction=cycles / triples if triples else 0.0,
        bt_ceiling=upper / total if total > 0 else 1.0,
        bt_ceiling_exact=exact,
        bt_lower=lower / total if total > 0 else 1.0,
        largest_cyclic_block=max((len(m) for m in members.values()), default=0),
    )
