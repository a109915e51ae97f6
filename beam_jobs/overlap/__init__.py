"""A validation split the model has not seen (docs/leakage.md).

fingerprints.py  window hashes of the dedup key, sampled (pure)
config.py        flags and settings;  evalsets.py  evaluation sets and their index (pure)
report.py        the leakage report's arithmetic (pure);  mask.py  masking (pure)
prints.py        ShardPrints: every document to be written, with its fingerprints
split.py         containment edges, the split by component, LeakageReport
steps.py         Leakage: all of it between the dedup stage and the shard writer
"""
