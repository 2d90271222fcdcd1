"""Pure loss functions: per-example outputs, no reductions."""
