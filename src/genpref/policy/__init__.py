"""Policies (causal LMs): loading, tokenised sequences and completion log-probabilities."""
