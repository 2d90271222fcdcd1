"""Self-play preference optimisation (SPPO, GPO): resumable generate → judge → build → train → evaluate."""
