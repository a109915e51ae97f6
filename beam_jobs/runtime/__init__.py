"""How the pipeline runs: runner choice, worker environment, progress lines."""
