"""Kneser-Ney of pruned tables (`--ngram-min-count`): the pipeline's continuation counts,
pruned mass and counts of counts give the model written the slow way over the unpruned
Counter; unpruned, the pipeline's statistics give exactly the model of the plain tables; the
saved scorer scores as the model does."""

import json
import math
import shutil
from collections import Counter, defaultdict

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline

from beam_jobs.counts.counting import TokenCodes, count_sequences, split_by_shard
from beam_jobs.counts.ngrams import CountNgrams
from beam_jobs.counts.pruning import finalize_shard, merge_stats, stats_json, thresholds
from beam_jobs.text.perplexity import NgramScorer
from lm.data import iter_document_blocks, iter_documents, load_manifest, load_vocab
from lm.ngram import KneserNey, discounts_from_counts_of_counts, evaluate
from lm.ngram_tables import CountTables
from tests.lm_fixtures import random_texts, write_data_dir

ORDER = 4


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    train = random_texts(80, seed=5, max_len=30)
    val = random_texts(15, seed=6, extra="猫")
    root = write_data_dir(tmp_path_factory.mktemp("pruned"), train, val, order=ORDER)
    return root, train


def recount(root, train, min_counts):
    """Replace the fixture's ngrams/ with the pipeline's, pruned by `min_counts`."""
    shutil.rmtree(f"{root}/ngrams")
    with TestPipeline(runner="FnApiRunner") as p:
        _ = p | beam.Create(train) | CountNgrams(root, "char", ORDER, 3, min_counts=min_counts)
    with open(f"{root}/manifest.json", encoding="utf-8") as f:
        manifest = json.load(f)
    manifest["ngrams"]["shards"] = [f"ngrams/ngrams-{s:05d}-of-00003.parquet" for s in range(3)]
    with open(f"{root}/manifest.json", "w", encoding="utf-8") as f:
        json.dump(manifest, f, ensure_ascii=False)
    return load_manifest(root)


class PrunedReferenceKN:
    """Interpolated modified KN over pruned counts, the slow way: adjusted counts and
    discounts from the unpruned Counter, probabilities from the kept n-grams, the pruned
    extensions' adjusted counts in the denominator and the backoff weight."""

    def __init__(self, counter, V, order, bos, kept):
        self.V, self.order = V, order
        self.a, self.d, self.kids = {}, {}, {}
        for n in range(1, order + 1):
            if n == order:
                a = {g: c for g, c in counter.items() if len(g) == n}
            else:
                a = defaultdict(int)
                for g in counter:
                    if len(g) == n + 1:
                        a[g[1:]] += 1
                for g, c in counter.items():
                    if len(g) == n and g[0] == bos:
                        a[g] = c
            a = {g: c for g, c in a.items() if not (n == 1 and g == (bos,))}
            hist = [sum(1 for c in a.values() if c == k) for k in (1, 2, 3, 4)]
            self.d[n] = discounts_from_counts_of_counts(hist)[0]
            self.kids[n] = defaultdict(dict)
            for g, c in a.items():
                self.kids[n][g[:-1]][g[-1]] = (c, g in kept)

    def disc(self, n, c):
        return min(self.d[n][min(c, 3) - 1], c) if c > 0 else 0.0

    def prob(self, history, w):
        p = 1.0 / self.V
        for n in range(1, self.order + 1):
            if n - 1 > len(history):
                break
            kids = self.kids[n].get(tuple(history[len(history) - (n - 1) :]) if n > 1 else ())
            if not kids or not any(k for _, k in kids.values()):
                continue
            total = sum(c for c, _ in kids.values())
            gamma = sum(self.disc(n, c) if k else c for c, k in kids.values()) / total
            c, k = kids.get(w, (0, False))
            p = ((c - self.disc(n, c)) / total if k else 0.0) + gamma * p
        return p


def ids_counter(docs, order):
    counter = Counter()
    for doc in docs:
        seq = tuple(int(i) for i in doc)
        for n in range(1, order + 1):
            for i in range(len(seq) - n + 1):
                counter[seq[i : i + n]] += 1
    return counter


@pytest.mark.parametrize("spec", [(2,), (1, 2), (1, 1, 3)])
def test_pruned_kn_equals_reference(corpus, spec):
    root, train = corpus
    manifest = recount(root, train, spec)
    vocab = load_vocab(root, manifest)
    tables = CountTables.from_parquet(root, manifest, vocab)
    assert tables.pruned
    counter = ids_counter(iter_documents(root, manifest, vocab, "train"), ORDER)
    m = thresholds(spec, ORDER)
    kept = {g for g, c in counter.items() if c >= m[len(g) - 1]}
    assert sum(len(tables.counts[n]) for n in range(2, ORDER + 1)) + 0 == sum(
        1 for g in kept if len(g) >= 2
    )
    for order in (2, 3, 4):
        ref = PrunedReferenceKN(counter, len(vocab), order, vocab.bos, kept)
        model = KneserNey(tables, order)
        nll, n = 0.0, 0
        for doc in iter_documents(root, manifest, vocab, "val"):
            doc = [int(i) for i in doc]
            for j in range(1, len(doc)):
                nll -= math.log(ref.prob(doc[:j], doc[j]))
                n += 1
        got = evaluate([model], iter_document_blocks(root, manifest, vocab, "val"), vocab.bos)
        assert got[model.name]["perplexity"] == pytest.approx(math.exp(nll / n), rel=1e-9)
        for context in ([vocab.bos], [vocab.bos, 5, 7], [vocab.bos, 3, 3, 4]):
            assert model.distribution(context).sum() == pytest.approx(1.0, abs=1e-9)


def test_unpruned_statistics_give_the_plain_model(corpus):
    root, train = corpus
    manifest = recount(root, train, (1,))
    vocab = load_vocab(root, manifest)
    plain = CountTables.from_parquet(root, manifest, vocab)
    assert not plain.pruned
    # the pipeline's statistics at threshold 1, attached as if the tables had been pruned
    codes = TokenCodes("char")
    per_shard = defaultdict(lambda: [None] * ORDER)
    for n, t in enumerate(count_sequences(codes.sequences(train), ORDER), 1):
        for s, part in split_by_shard(t, 2):
            per_shard[s][n - 1] = part
    results = [finalize_shard(per_shard[s], [1] * ORDER, codes.bos) for s in range(2)]
    rows = {}
    for r in results:
        for t, mass in zip(r.continuation, r.pruned_mass):
            if t is None:
                continue
            ids = np.array(
                [[vocab.index.get(codes.token(c), vocab.unk) for c in g] for g in t.grams.tolist()],
                np.int64,
            ).reshape(-1, t.grams.shape[1])
            old = rows.get(t.grams.shape[1], (np.zeros((0, t.grams.shape[1]), np.int64), [], []))
            rows[t.grams.shape[1]] = (
                np.concatenate([old[0], ids]),
                np.concatenate([old[1], t.counts]),
                np.concatenate([old[2], mass]),
            )
    stats = stats_json(merge_stats([r.stats for r in results]), [1] * ORDER, [])
    attached = CountTables.from_parquet(root, manifest, vocab)
    attached.attach_pruning(stats, rows)
    blocks = list(iter_document_blocks(root, manifest, vocab, "val"))
    for order in range(1, ORDER + 1):
        a = evaluate([KneserNey(plain, order)], blocks, vocab.bos)
        b = evaluate([KneserNey(attached, order)], blocks, vocab.bos)
        name = f"kneser_ney_{order}"
        assert b[name]["perplexity"] == pytest.approx(a[name]["perplexity"], rel=1e-12)


def test_saved_scorer_scores_documents_as_the_model(corpus, tmp_path):
    root, train = corpus
    manifest = recount(root, train, (1,))
    vocab = load_vocab(root, manifest)
    model = KneserNey(CountTables.from_parquet(root, manifest, vocab), 3)
    model.scorer.tokens = list(vocab.tokens)
    model.scorer.save(str(tmp_path / "kn.npz"))
    loaded = NgramScorer.load(str(tmp_path / "kn.npz"))
    for text in ("の関数は値を", "猫が", ""):  # 猫 is out of the vocabulary
        ids = vocab.encode_document(text)
        assert loaded.encode_document(text).tolist() == ids.tolist()
        want = float(-model.score(ids).sum())
        nll, n = loaded.document_nll(text)
        assert n == len(text) + 1
        assert nll == pytest.approx(want, rel=1e-5)
    with pytest.raises(ValueError, match="unreadable"):
        NgramScorer.load(str(tmp_path / "missing.npz"))
