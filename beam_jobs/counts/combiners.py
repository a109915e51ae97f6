"""Vocabulary and n-gram counts over the train split, as Beam transforms.

The vocabulary is one global `CombineFn` (its accumulator holds distinct tokens, which stay
few). N-gram counts (`CountNgrams`, in `beam_jobs.counts.ngrams`) are summed per n-gram
shard with a worker buffer bounded by a flag.
"""

from __future__ import annotations

from collections import Counter

import apache_beam as beam

from beam_jobs.counts import counting
from beam_jobs.counts.ngrams import CountNgrams
from beam_jobs.io.fs import write_json
from beam_jobs.tokens.tokenizers import BOS, EOS, get_tokenizer

__all__ = ["BuildVocab", "CountNgrams", "TokenCountsFn"]


class TokenCountsFn(beam.CombineFn):
    """Documents' texts → Counter of tokens (and of BOS/EOS, once per document)."""

    def __init__(self, tokenizer: str):
        self.tokenizer_name = tokenizer
        self._tokenizer = None

    def create_accumulator(self):
        return Counter()

    def add_input(self, acc, text):
        if self._tokenizer is None:
            self._tokenizer = get_tokenizer(self.tokenizer_name)
        acc.update(self._tokenizer.counts(text))
        acc[BOS] += 1
        acc[EOS] += 1
        return acc

    def merge_accumulators(self, accs):
        return counting.merge_counters(accs)

    def extract_output(self, acc):
        return acc


class BuildVocab(beam.PTransform):
    """Train texts → vocab.json (written) ; outputs the vocab dict."""

    def __init__(self, output_dir: str, tokenizer: str, min_count: int, max_vocab: int):
        super().__init__()
        self.output_dir, self.tokenizer = output_dir, tokenizer
        self.min_count, self.max_vocab = min_count, max_vocab

    def expand(self, texts):
        path = beam.io.filesystems.FileSystems.join(self.output_dir, "vocab.json")

        def finish(counts):
            vocab = counting.build_vocab(counts, self.min_count, self.max_vocab)
            write_json(path, vocab)
            return vocab

        return (
            texts
            | "CountTokens" >> beam.CombineGlobally(TokenCountsFn(self.tokenizer))
            | "SelectAndWrite" >> beam.Map(finish)
        )
