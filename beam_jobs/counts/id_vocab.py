"""vocab.json for a tokenizer with its own ids (SentencePiece, byte-level BPE).

The vocabulary is the model's: `tokens[i]` is the piece of id i, so the ids in the token shards,
in `lm` and in the model are one and the same; `<unk>`, `<bos>`, `<eos>` are ids 0, 1, 2 under
the pipeline's names (every model the pipeline accepts has them there). `counts` are train-split
counts of each id, summed from the shard writers' per-shard counts (no text is encoded twice);
as for characters, `<bos>` and `<eos>` count the train documents and `<unk>` the tokens that
became `<unk>` (none with byte fallback).
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems

from beam_jobs.io.fs import write_json
from beam_jobs.io.token_shards import IdCounts
from beam_jobs.tokens.tokenizers import SPECIAL_TOKENS


def id_vocab(pieces: list[str], counts: np.ndarray, documents: int) -> dict:
    """The vocab.json body of a model's pieces (id order) and train counts per id."""
    counts = np.asarray(counts, dtype=np.int64)
    if len(counts) != len(pieces):
        raise ValueError(f"{len(counts)} counts for a vocabulary of {len(pieces)}")
    n = len(SPECIAL_TOKENS)
    total = int(counts.sum())
    body = [int(c) for c in counts[n:]]
    return {
        "special_tokens": list(SPECIAL_TOKENS),
        "tokens": list(SPECIAL_TOKENS) + list(pieces[n:]),
        "counts": [int(counts[0]), documents, documents] + body,
        "order": "id",  # tokens[i] is the model's id i (character vocabularies: by count)
        "min_count": 1,
        "max_vocab": 0,
        "total_tokens": total,
        "unk_tokens": int(counts[0]),
    }


class SumIdCounts(beam.CombineFn):
    def create_accumulator(self):
        return None

    def add_input(self, acc, item: IdCounts):
        return self.merge_accumulators([acc, item])

    def merge_accumulators(self, accs):
        parts = [a for a in accs if a is not None]
        if not parts:
            return None
        return IdCounts(sum(p.counts for p in parts), sum(p.documents for p in parts))

    def extract_output(self, acc):
        return acc


class BuildIdVocab(beam.PTransform):
    """The writers' `IdCounts` of the train split → vocab.json (written); outputs its body."""

    def __init__(self, output_dir: str, tokenizer):
        super().__init__()
        self.output_dir, self.tokenizer = output_dir, tokenizer  # a PCollection of one

    def expand(self, counts):
        path = FileSystems.join(self.output_dir, "vocab.json")

        def finish(total: IdCounts | None, tokenizer) -> dict:
            if total is None:
                total = IdCounts(np.zeros(tokenizer.vocab_size, np.int64), 0)
            vocab = id_vocab(tokenizer.pieces(), total.counts, total.documents)
            write_json(path, vocab)
            return vocab

        return (
            counts
            | "SumIdCounts" >> beam.CombineGlobally(SumIdCounts())
            | "SelectAndWrite" >> beam.Map(finish, beam.pvalue.AsSingleton(self.tokenizer))
        )
