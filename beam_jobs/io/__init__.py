"""Files in and out: readers (one per input format), spill files, Parquet shard writers."""
