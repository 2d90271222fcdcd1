"""Intransitive (cyclic) preferences: diagnostics, the cyclic dataset builder and offline cyclic text.

* :mod:`genpref.cyclic.graph`: 3-cycles and the best accuracy any scalar (BT) model can reach;
* :mod:`genpref.cyclic.builder`: leave-one-criterion-out cyclic datasets from multi-aspect ratings
  (Zhang et al., arXiv 2410.02197, Table 1);
* :mod:`genpref.cyclic.synthetic`: aspect-rated synthetic text whose response types form cycles.
"""

from genpref.cyclic.builder import CRITERIA, BuildReport, build_cyclic, build_cyclic_datasets
from genpref.cyclic.graph import (
    CycleReport,
    analyze_comparisons,
    comparisons_from_examples,
    comparisons_from_rankings,
    max_acyclic_weight,
)
from genpref.cyclic.synthetic import make_aspect_rated_rows, make_cyclic_datasets, split_by_cycle

__all__ = [
    "CRITERIA",
    "BuildReport",
    "CycleReport",
    "analyze_comparisons",
    "build_cyclic",
    "build_cyclic_datasets",
    "comparisons_from_examples",
    "comparisons_from_rankings",
    "make_aspect_rated_rows",
    "make_cyclic_datasets",
    "max_acyclic_weight",
    "split_by_cycle",
]
