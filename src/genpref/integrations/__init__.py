"""genpref judges inside other tools: TRL reward functions and judges (``genpref.integrations.trl``)."""
