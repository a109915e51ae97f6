"""Text cleaning: normalization, quality filters, and the Clean step that applies them."""
