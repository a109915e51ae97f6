"""Deduplication: one record per id, exact dedup on the dedup key, MinHash-LSH near dedup."""
