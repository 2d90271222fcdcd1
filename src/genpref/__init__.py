"""genpref: general preference modeling and preference optimization for language models.

Preference models (Bradley-Terry, the General Preference embedding Model of Zhang et al.,
arXiv 2410.02197, and a pairwise PairPM baseline) share one API: ``embed``, ``score``, ``prob``
and ``rank``. See the README for the command line.
"""

__version__ = "0.1.0"
