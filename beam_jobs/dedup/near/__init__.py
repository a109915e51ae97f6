"""Near-duplicate removal: MinHash-LSH candidates, verification, distributed connected components.

    records ─ Candidates (candidates.py: signatures, LSH buckets by shard, star edges)
            ─ Verify (verify.py: triage by signature, exact shingle Jaccard of the doubtful)
            ─ ConnectedComponents (components.py: large-star/small-star rounds, residual)
            ─ KeepPerComponent (keep.py: the twin rule, or one per component) ─▶ Duplicate rows

No step gathers the corpus, its signatures or its edges on one worker: a bucket shard holds
1/`bucket_shards` of the band entries, the edges of buckets above `max_bucket_size` are
verified where their members are, groups per node are streamed, and the only single-key step
is the union-find of the edges that have not converged after the rounds (zero when they
converged; counted). Every decision is a counter in the `near_dedup` namespace. The output
depends only on the set of input documents. Settings and flags: config.py.
"""

from __future__ import annotations

import apache_beam as beam

from beam_jobs.dedup.near.candidates import AddSignature, Candidates
from beam_jobs.dedup.near.components import ConnectedComponents
from beam_jobs.dedup.near.config import NearDedupConfig, add_near_dedup_args
from beam_jobs.dedup.near.keep import KeepPerComponent
from beam_jobs.dedup.near.verify import Verify

__all__ = ["AddSignature", "NearDedup", "NearDedupConfig", "add_near_dedup_args"]


class NearDedup(beam.PTransform):
    """`DedupRecord`s (with signatures, their documents in spill files under `output_dir`) →
    {'duplicates': `Duplicate` rows of kind near, 'edges': the verified (member, center)
    pairs, for inspection}."""

    def __init__(self, config: NearDedupConfig, output_dir: str):
        super().__init__()
        self.config, self.output_dir = config.resolved(), output_dir

    def expand(self, records):
        found = records | "Candidates" >> Candidates(self.config)
        verified = found["candidates"] | "Verify" >> Verify(
            self.config, records, found["giant"], self.output_dir
        )
        edges = verified | "Pairs" >> beam.Map(lambda e: (e[0], e[1]))
        labels = edges | "ConnectedComponents" >> ConnectedComponents(self.config.cc_rounds)
        duplicates = labels | "Keep" >> KeepPerComponent(
            found["sigs"],
            verified,
            self.config.keep_rule,
            self.config.max_component_edges,
            need_sigs=self.config.verify == "none",
        )
        return {"duplicates": duplicates, "edges": edges}
