"""The train/val split and shard assignment, from hashes of stable ids."""
