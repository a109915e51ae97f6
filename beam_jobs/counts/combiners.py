"""Vocabulary and n-gram counts over the train split, as Beam combiners.

The vocabulary is one global `CombineFn` (its accumulator holds distinct tokens, which stay
few). N-gram counts are combined per n-gram shard, so no worker ever holds more than one
shard's distinct n-grams, and combiner lifting sums within a bundle before the shuffle.
"""

from __future__ import annotations

import zlib
from collections import Counter

import apache_beam as beam
import numpy as np
import pyarrow as pa

from beam_jobs.counts import counting
from beam_jobs.io.fs import write_json
from beam_jobs.io.parquet import EveryShard, TableFile, shard_name, write_table
from beam_jobs.records import NGRAM_SCHEMA
from beam_jobs.tokens.tokenizers import BOS, EOS, get_tokenizer

BATCH_CHARS = 1 << 20


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

        return (texts
                | "CountTokens" >> beam.CombineGlobally(TokenCountsFn(self.tokenizer))
                | "SelectAndWrite" >> beam.Map(finish))


class PackedNgramsFn(beam.CombineFn):
    """(order, keys, counts) parts → per order, merged sorted unique keys and counts.

    Parts are buffered and merged when the buffer passes `compact_at` keys, so memory stays
    near the number of distinct n-grams, not the number of documents."""

    def __init__(self, order: int, compact_at: int = 2_000_000):
        self.order, self.compact_at = order, compact_at

    def create_accumulator(self):
        return [[] for _ in range(self.order)], 0

    def add_input(self, acc, part):
        parts, pending = acc
        n, keys, counts = part
        parts[n - 1].append((keys, counts))
        pending += len(keys)
        if pending > self.compact_at:
            parts = [[counting.merge_packed(p)] for p in parts]
            pending = 0
        return parts, pending

    def compact(self, acc):
        # Called on a worker's partial result before it is shuffled: one merged array per
        # order travels instead of one small array per document (and the merge runs in
        # parallel on the workers rather than after the shuffle).
        parts, _ = acc
        return [[counting.merge_packed(p)] for p in parts], 0

    def merge_accumulators(self, accs):
        merged = [[] for _ in range(self.order)]
        for parts, _ in accs:
            for n in range(self.order):
                merged[n].extend(parts[n])
        return [[counting.merge_packed(p)] for p in merged], 0

    def extract_output(self, acc):
        return [counting.merge_packed(p) for p in acc[0]]


class TupleNgramsFn(beam.CombineFn):
    """Generic path: Counters of token tuples."""

    def create_accumulator(self):
        return Counter()

    def add_input(self, acc, counts):
        acc.update(counts)
        return acc

    def merge_accumulators(self, accs):
        return counting.merge_counters(accs)

    def extract_output(self, acc):
        return acc


def tuple_shard(gram: tuple, num_shards: int) -> int:
    return zlib.crc32("\x1f".join(gram).encode("utf-8")) % num_shards


class CountNgrams(beam.PTransform):
    """Train texts → Parquet n-gram tables under DIR/ngrams; outputs one `TableFile` per shard."""

    def __init__(self, output_dir: str, tokenizer: str | dict, order: int, num_shards: int,
                 row_group_size: int = 65536, tokenizer_dir: str | None = None):
        super().__init__()
        self.output_dir, self.tokenizer, self.order = output_dir, tokenizer, order
        self.num_shards, self.row_group_size = num_shards, row_group_size
        self.packed = tokenizer == "char" and order <= counting.MAX_PACKED_ORDER
        self.tokenizer_dir = tokenizer_dir  # where a model's files are (`get_tokenizer`)

    def expand(self, texts):
        order, num_shards = self.order, self.num_shards
        if self.packed:
            # Documents in batches of up to a million characters: one sort per order and
            # batch, and a few parts per batch for the combiner instead of a dozen a document.
            texts = texts | "Batch" >> beam.BatchElements(
                min_batch_size=1 << 16, max_batch_size=BATCH_CHARS, element_size_fn=len)

            def parts(batch):
                for n, (keys, counts) in enumerate(counting.packed_ngrams_of_many(batch, order), 1):
                    shards = keys % np.uint64(num_shards)
                    by_shard = np.argsort(shards, kind="stable")  # keeps keys sorted per shard
                    bounds = np.searchsorted(shards[by_shard], np.arange(num_shards + 1))
                    for shard in range(num_shards):
                        pick = by_shard[bounds[shard]:bounds[shard + 1]]
                        if len(pick):
                            yield shard, (n, keys[pick], counts[pick])

            combine_fn = PackedNgramsFn(order)
        else:
            tokenizer_config, tokenizer_dir, cache = self.tokenizer, self.tokenizer_dir, []

            def parts(text):
                if not cache:  # a model is loaded once per worker, not once per document
                    cache.append(get_tokenizer(tokenizer_config, tokenizer_dir))
                tokens = cache[0].tokenize(text)
                by_shard: dict[int, Counter] = {}
                for gram, count in counting.ngrams_of(tokens, order).items():
                    by_shard.setdefault(tuple_shard(gram, num_shards), Counter())[gram] = count
                yield from by_shard.items()

            combine_fn = TupleNgramsFn()

        empty = texts.pipeline | "AllNgramShards" >> EveryShard(num_shards)
        counted = (texts
                   | "NgramsByShard" >> beam.FlatMap(parts)
                   | "SumPerShard" >> beam.CombinePerKey(combine_fn))
        return ((counted, empty)
                | "FlattenShards" >> beam.Flatten()
                | "GroupShards" >> beam.GroupByKey()
                | "WriteNgramShard" >> beam.MapTuple(self._write))

    def _table(self, result) -> pa.Table:
        if result is None:
            return NGRAM_SCHEMA.empty_table()
        if self.packed:
            orders = [pa.array(np.full(len(keys), n, np.int32)) for n, (keys, _) in
                      enumerate(result, 1)]
            grams = [counting.ngram_list_array(keys, n) for n, (keys, _) in enumerate(result, 1)]
            counts = [pa.array(cnt.astype(np.int64)) for _, cnt in result]
            return pa.table({"order": pa.chunked_array(orders, pa.int32()),
                             "ngram": pa.chunked_array(grams, pa.list_(pa.string())),
                             "count": pa.chunked_array(counts, pa.int64())}, schema=NGRAM_SCHEMA)
        ordered = sorted(result, key=lambda g: (len(g), g))
        return pa.table({"order": [len(g) for g in ordered], "ngram": [list(g) for g in ordered],
                         "count": [result[g] for g in ordered]}, schema=NGRAM_SCHEMA)

    def _write(self, shard, results):
        results = [r for r in results if r is not None]
        table = self._table(results[0] if results else None)
        rel = "ngrams/" + shard_name("ngrams", shard, self.num_shards)
        write_table(beam.io.filesystems.FileSystems.join(self.output_dir, rel), table,
                    self.row_group_size)
        beam.metrics.Metrics.counter("write", "ngram_shards").inc()
        beam.metrics.Metrics.counter("ngrams", "distinct").inc(table.num_rows)
        return TableFile(rel, shard, table.num_rows)
