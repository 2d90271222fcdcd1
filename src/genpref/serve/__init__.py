"""``genpref serve``: an HTTP reward server with dynamic batching (needs the ``serve`` extra)."""
