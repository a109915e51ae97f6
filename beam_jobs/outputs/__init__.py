"""What a run leaves besides its shards: statistics, report, manifest, stage markers."""
