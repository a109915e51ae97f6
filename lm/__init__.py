"""Language models trained on the output of `beam_jobs.prepare` (see docs/lm.md)."""
