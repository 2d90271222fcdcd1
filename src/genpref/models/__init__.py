"""Preference models: a backbone, a pooling rule, a head and a link function."""
