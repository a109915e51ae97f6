"""N-gram baselines: normalization, and agreement with a plain-Python reference built from a
`collections.Counter` over the mapped training sequences."""

import math
from collections import Counter, defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lm.data import iter_document_blocks, iter_documents, load_manifest, load_vocab
from lm.ngram import (
    AddKBigram,
    AddKUnigram,
    CountTables,
    KneserNey,
    evaluate,
    modified_kn_discounts,
    sample,
)
from tests.lm_fixtures import count_ngrams, random_texts, small_data_dir


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    # min_count=2 leaves rare characters out of the vocabulary: counts must be merged on <unk>
    root = small_data_dir(tmp_path_factory.mktemp("ngram"), order=4, min_count=2)
    manifest = load_manifest(root)
    vocab = load_vocab(root, manifest)
    return root, manifest, vocab, CountTables.from_parquet(root, manifest, vocab)


def mapped_train_counter(root, manifest, vocab):
    """Counter over `<bos> t1 .. tk <eos>` of the train split, OOV tokens mapped to <unk>."""
    counter = Counter()
    for doc in iter_documents(root, manifest, vocab, "train"):
        seq = tuple(int(i) for i in doc)
        for n in range(1, manifest["ngrams"]["order"] + 1):
            for i in range(len(seq) - n + 1):
                counter[seq[i : i + n]] += 1
    return counter


class ReferenceKN:
    """Interpolated modified Kneser-Ney written the slow, obvious way over a Counter."""

    def __init__(self, counter, V, order, bos):
        self.V, self.order, self.bos = V, order, bos
        self.a = {}
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
            self.a[n] = a
        self.d = {n: modified_kn_discounts(np.array(list(self.a[n].values())))[0] for n in self.a}
        self.children = {n: defaultdict(dict) for n in self.a}
        for n, a in self.a.items():
            for g, c in a.items():
                self.children[n][g[:-1]][g[-1]] = c

    def disc(self, n, c):
        return min(self.d[n][min(c, 3) - 1], c) if c > 0 else 0.0

    def prob(self, history, w):
        p = 1.0 / self.V
        for n in range(1, self.order + 1):
            if n - 1 > len(history):
                break
            ctx = tuple(history[len(history) - (n - 1) :]) if n > 1 else ()
            kids = self.children[n].get(ctx)
            if not kids:
                continue
            total = sum(kids.values())
            gamma = sum(self.disc(n, c) for c in kids.values()) / total
            c = kids.get(w, 0)
            p = (c - self.disc(n, c)) / total + gamma * p
        return p


def test_kn_matches_reference_built_from_counter(data):
    root, manifest, vocab, tables = data
    counter = mapped_train_counter(root, manifest, vocab)
    for order in (2, 3, 4):
        ref = ReferenceKN(counter, len(vocab), order, vocab.bos)
        model = KneserNey(tables, order)
        nll, n = 0.0, 0
        for doc in iter_documents(root, manifest, vocab, "val"):
            doc = [int(i) for i in doc]
            for j in range(1, len(doc)):
                nll -= math.log(ref.prob(doc[:j], doc[j]))
                n += 1
        got = evaluate([model], iter_document_blocks(root, manifest, vocab, "val", 50), vocab.bos)
        assert got[model.name]["tokens"] == n
        assert got[model.name]["perplexity"] == pytest.approx(math.exp(nll / n), rel=1e-9)


def test_add_k_matches_counter(data):
    root, manifest, vocab, tables = data
    counter = mapped_train_counter(root, manifest, vocab)
    V, k = len(vocab), 0.5
    uni = Counter({g[0]: c for g, c in counter.items() if len(g) == 1 and g[0] != vocab.bos})
    big = Counter({g: c for g, c in counter.items() if len(g) == 2})
    row = Counter()
    for (a, _), c in big.items():
        row[a] += c
    nll_u = nll_b = 0.0
    n = 0
    for doc in iter_documents(root, manifest, vocab, "val"):
        for prev, w in zip(doc[:-1].tolist(), doc[1:].tolist()):
            nll_u -= math.log((uni[w] + k) / (sum(uni.values()) + k * V))
            nll_b -= math.log((big[(prev, w)] + k) / (row[prev] + k * V))
            n += 1
    got = evaluate(
        [AddKUnigram(tables, k), AddKBigram(tables, k)],
        iter_document_blocks(root, manifest, vocab, "val"),
        vocab.bos,
    )
    assert got["add_k_unigram"]["perplexity"] == pytest.approx(math.exp(nll_u / n), rel=1e-9)
    assert got["add_k_bigram"]["perplexity"] == pytest.approx(math.exp(nll_b / n), rel=1e-9)


def tables_from_counter(counter, vocab, order: int) -> CountTables:
    """Tables from a `Counter` of token tuples (as the pipeline counts them), through the same
    `add_order` that `CountTables.from_parquet` uses."""
    tables = CountTables(len(vocab), vocab.bos, vocab.eos, vocab.unk)
    for n in range(1, order + 1):
        items = [(g, c) for g, c in counter.items() if len(g) == n]
        ids = np.array(
            [[vocab.index.get(t, vocab.unk) for t in g] for g, _ in items], dtype=np.int64
        ).reshape(-1, n)
        tables.add_order(n, ids, np.array([c for _, c in items], dtype=np.int64))
    return tables


def test_tables_from_parquet_equal_tables_from_counter(data):
    root, manifest, vocab, tables = data
    train = [t for t in random_texts(60, seed=1)]  # the fixture's train texts
    direct = tables_from_counter(count_ngrams(train, 4), vocab, 4)
    for n in range(1, 5):
        np.testing.assert_array_equal(direct.keys[n], tables.keys[n])
        np.testing.assert_array_equal(direct.counts[n], tables.counts[n])


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_kn_distributions_sum_to_one(data_fixture_cache, data):
    tables, vocab = data_fixture_cache
    order = data.draw(st.integers(1, tables.order))
    length = data.draw(st.integers(0, 5))
    context = [vocab.bos] + data.draw(
        st.lists(st.integers(3, len(vocab) - 1), min_size=length, max_size=length)
    )
    model = KneserNey(tables, order)
    p = model.distribution(context)
    assert (p > 0).all()
    assert p.sum() == pytest.approx(1.0, abs=1e-9)
    # the vectorized scorer agrees with the distribution at the last position
    w = data.draw(st.integers(2, len(vocab) - 1))
    score = model.score(np.array(context + [w]))[-1]
    assert score == pytest.approx(math.log(p[w]), rel=1e-9, abs=1e-12)


@pytest.fixture(scope="module")
def data_fixture_cache(data):
    return data[3], data[2]


def test_add_k_distributions_sum_to_one(data):
    _, _, vocab, tables = data
    for model in (AddKUnigram(tables, 1.0), AddKBigram(tables, 0.1)):
        for prev in range(len(vocab)):
            assert model.distribution([vocab.bos, prev]).sum() == pytest.approx(1.0)


def test_fallback_discount_on_degenerate_counts():
    d, fallback = modified_kn_discounts(np.array([5, 7, 9, 100]))  # no singletons at all
    assert fallback and (d > 0).all() and (d < 1).all()
    d, fallback = modified_kn_discounts(np.array([1] * 50 + [2] * 20 + [3] * 10 + [4] * 5))
    assert not fallback and 0 < d[0] <= 1 < d[1] <= 2 and d[2] <= 3


def test_sampling_is_seeded_and_stops(data):
    _, _, vocab, tables = data
    model = KneserNey(tables)
    a = sample(model, vocab, "の", 30, seed=3)
    assert a == sample(model, vocab, "の", 30, seed=3)
    assert len(a) <= 30
