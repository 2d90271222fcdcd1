"""Training recipes and the pieces they share (configs, checkpoints, metrics, schedules)."""
