"""The tokenizer's training sample: documents chosen by a hash of their id, bounded in bytes.

The sample is the shortest run of documents, in the order of `sample_key(id)` (ties by id),
whose UTF-8 text reaches `budget_bytes` (all documents when they hold less). It depends on the
set of documents only, never on how a runner bundled or ordered them, and it merges: the sample
of a union is the sample of the union of the parts' samples, because every document of the
whole's sample is in its own part's sample. So it is a combiner (`BoundedSample.add` / `merge`)
whose accumulator never holds more than `budget_bytes` plus one document.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from beam_jobs.split.assign import id_hash


def sample_key(doc_id: str, seed: str = "0") -> int:
    """Where a document stands in the sampling order (a 64-bit hash of its id)."""
    return id_hash(doc_id, "tokenizer" + seed)


class BoundedSample:
    """The documents with the smallest (key, id) until their bytes reach `budget_bytes`."""

    def __init__(self, budget_bytes: int):
        if budget_bytes <= 0:
            raise ValueError(f"the tokenizer sample needs a positive size, not {budget_bytes}")
        self.budget = int(budget_bytes)
        self.heap: list[tuple[int, str, str, int]] = []  # (-key, reversed id, text, bytes)
        self.total = 0

    def add(self, key: int, doc_id: str, text: str) -> BoundedSample:
        size = len(text.encode("utf-8"))
        if self.total >= self.budget and (-key, _neg(doc_id)) < self.heap[0][:2]:
            return self  # after every kept document: it would be trimmed at once
        heapq.heappush(self.heap, (-key, _neg(doc_id), text, size))
        self.total += size
        # Drop the last document while the others still reach the budget.
        while self.heap and self.total - self.heap[0][3] >= self.budget:
            self.total -= heapq.heappop(self.heap)[3]
        return self

    def add_document(self, doc_id: str, text: str, seed: str = "0") -> BoundedSample:
        return self.add(sample_key(doc_id, seed), doc_id, text)

    def merge(self, others: Iterable[BoundedSample]) -> BoundedSample:
        for other in others:
            for neg_key, neg_id, text, _ in other.heap:
                self.add(-neg_key, _unneg(neg_id), text)
        return self

    def __len__(self) -> int:
        return len(self.heap)

    def documents(self) -> list[tuple[str, str]]:
        """(id, text) in sampling order: the order the tokenizer trains in."""
        ordered = sorted(self.heap, key=lambda e: (-e[0], _unneg(e[1])))
        return [(_unneg(e[1]), e[2]) for e in ordered]

    def texts(self) -> list[str]:
        return [text for _, text in self.documents()]

    def summary(self) -> dict:
        return {
            "documents": len(self.heap),
            "bytes": self.total,
            "budget_bytes": self.budget,
            "rule": "smallest blake2b-64(id, person='tokenizer'+seed) first, until the "
            "texts reach budget_bytes of UTF-8",
        }


# The heap is a max-heap on (key, id) through negation; an id negates as its code points do.
def _neg(doc_id: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in doc_id) + (1,)


def _unneg(neg: tuple[int, ...]) -> str:
    return "".join(chr(-c) for c in neg[:-1])
