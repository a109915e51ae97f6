"""Reading the pipeline's output (docs/output_format.md, schema version 1).

* `load_manifest` refuses a directory that is missing, incomplete or of another schema version.
* `Vocab` maps tokens to ids with the manifest's vocabulary (unknown tokens become `<unk>`);
  with a subword tokenizer (SentencePiece, BPE) the vocabulary is the model's own and `Vocab`
  encodes and decodes with it. Shards with an `input_ids` column are read as ids directly.
* `iter_documents` streams one split's documents row group by row group (bounded memory), each
  as the id sequence `<bos> t1 .. tk <eos>`, in manifest order (evaluation order).
* `TrainStream` is the training `IterableDataset`: it splits (shard, row group) units across
  DataLoader workers, shuffles with a seed per epoch, cuts the token stream into contexts of
  `block_size + 1` tokens and yields whole batches. Its position is (epoch, batches yielded)
  per worker; a resumed stream replays its deterministic order and skips what was consumed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
from torch.utils.data import IterableDataset, get_worker_info

from beam_jobs.text.codepoints import code_points
from beam_jobs.tokens.tokenizers import (
    BOS,
    EOS,
    SPECIAL_TOKENS,
    TOKENIZERS,
    UNK,
    Tokenizer,
    get_tokenizer,
    tokenizer_class,
)
from lm.errors import DataDirError  # defined with lm's other errors, raised here

SCHEMA_VERSION = 1
IGNORE_INDEX = -100  # a target that is not scored (padding, the step into a next <bos>)
INPUT_IDS = "input_ids"  # the pipeline's token-ids column (--token-formats parquet)


def load_manifest(data_dir: str) -> dict:
    """Read and check `DIR/manifest.json`; raise `DataDirError` with a clear message."""
    path = os.path.join(data_dir, "manifest.json")
    if not os.path.isdir(data_dir):
        raise DataDirError(f"{data_dir}: no such directory")
    if not os.path.exists(path):
        raise DataDirError(
            f"{data_dir}: no manifest.json. The pipeline writes it last, so the run has not "
            "finished (or failed), or this is not a `beam_jobs.prepare` output directory."
        )
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise DataDirError(f"{path}: unreadable manifest ({e})") from None
    if not isinstance(manifest, dict):
        raise DataDirError(f"{path}: manifest is not a JSON object")
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise DataDirError(
            f"{path}: schema_version {version!r}; this version of lm reads "
            f"schema_version {SCHEMA_VERSION} only"
        )
    if manifest.get("complete") is not True:
        raise DataDirError(
            f"{path}: complete is {manifest.get('complete')!r}, not true: "
            "the pipeline run did not finish"
        )
    for key in ("tokenizer", "vocab", "splits", "ngrams"):
        if key not in manifest:
            raise DataDirError(f"{path}: required key {key!r} is missing")
    for split in ("train", "val"):
        if split not in manifest["splits"] or "shards" not in manifest["splits"][split]:
            raise DataDirError(f"{path}: splits.{split}.shards is missing")
    if "order" not in manifest["ngrams"] or "shards" not in manifest["ngrams"]:
        raise DataDirError(f"{path}: ngrams.order / ngrams.shards is missing")
    tokenizer = manifest["tokenizer"]
    name = tokenizer.get("name") if isinstance(tokenizer, dict) else tokenizer
    if name not in TOKENIZERS:
        raise DataDirError(
            f"{path}: tokenizer {name!r} is not one this version of lm knows "
            f"({', '.join(sorted(TOKENIZERS))})"
        )
    files = [manifest["vocab"], *manifest["ngrams"]["shards"]]
    if isinstance(tokenizer, dict) and "model" in tokenizer:  # a subword model (tokenizer/)
        files.append(tokenizer["model"])
    files += [s["path"] for split in ("train", "val") for s in manifest["splits"][split]["shards"]]
    for rel in files:
        if not os.path.exists(os.path.join(data_dir, rel)):
            raise DataDirError(f"{data_dir}: the manifest lists {rel}, which does not exist")
    return manifest


def verify_shards(data_dir: str, manifest: dict) -> None:
    """Every train and val shard holds the rows the manifest says and, where the manifest
    records one, the same bytes (sha256); `DataDirError` (one line) for a shard that was
    replaced, truncated or is not Parquet. Training runs this before its first step."""
    for split in ("train", "val"):
        for shard in manifest["splits"][split]["shards"]:
            path = os.path.join(data_dir, shard["path"])
            try:
                rows = pq.read_metadata(path).num_rows
            except (OSError, ValueError) as e:  # ArrowInvalid is a ValueError
                detail = (str(e).strip().splitlines() or [""])[0][:120]
                raise DataDirError(
                    f"{path}: unreadable shard, truncated or not Parquet ({detail})"
                ) from None
            if rows != shard["rows"]:
                raise DataDirError(
                    f"{path}: {rows} rows where the manifest says "
                    f"{shard['rows']}; the shard is not the one the pipeline "
                    "wrote"
                )
            if "sha256" in shard and file_sha256(path) != shard["sha256"]:
                raise DataDirError(
                    f"{path}: its bytes differ from the manifest's sha256; "
                    "the shard is not the one the pipeline wrote"
                )


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def shard_paths(data_dir: str, manifest: dict, split: str) -> list[str]:
    return [os.path.join(data_dir, s["path"]) for s in manifest["splits"][split]["shards"]]


class Vocab:
    """Token <-> id with the manifest's vocabulary; out-of-vocabulary tokens map to `<unk>`.

    With a tokenizer that has ids (a subword model), the vocabulary is the model's pieces in id
    order, so encoding and decoding are the model's own (exact round trips, no `<unk>` with
    byte fallback)."""

    def __init__(self, tokens: list[str], tokenizer: Tokenizer):
        if list(tokens[: len(SPECIAL_TOKENS)]) != list(SPECIAL_TOKENS):
            raise DataDirError(f"vocabulary must start with {list(SPECIAL_TOKENS)}")
        self.tokens = list(tokens)
        self.tokenizer = tokenizer
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self.unk, self.bos, self.eos = (self.index[t] for t in (UNK, BOS, EOS))
        self.ids = tokenizer.has_ids
        if self.ids and len(self.tokens) != tokenizer.vocab_size:
            raise DataDirError(
                f"the vocabulary has {len(self.tokens)} tokens, the tokenizer "
                f"model {tokenizer.vocab_size} ids: they are not one model's"
            )
        self._lut = None
        if tokenizer.name == "char" and all(len(t) == 1 for t in self.tokens[3:]):
            top = max((ord(t) for t in self.tokens[3:]), default=0)
            lut = np.full(top + 1, self.unk, dtype=np.int32)
            for i, t in enumerate(self.tokens[3:], start=3):
                lut[ord(t)] = i
            self._lut = lut

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> np.ndarray:
        """Ids of `text` (no `<bos>`/`<eos>`), int32."""
        if self.ids:
            return self.tokenizer.encode(text)
        if self._lut is not None:  # vectorized path for characters
            cps = code_points(text)
            ids = np.full(len(cps), self.unk, dtype=np.int32)
            inside = cps < len(self._lut)
            ids[inside] = self._lut[cps[inside]]
            return ids
        get, unk = self.index.get, self.unk
        return np.fromiter((get(t, unk) for t in self.tokenizer.tokenize(text)), dtype=np.int32)

    def encode_document(self, text: str) -> np.ndarray:
        """`<bos> t1 .. tk <eos>` as int32 ids."""
        return self.document(self.encode(text))

    def document(self, ids: np.ndarray) -> np.ndarray:
        out = np.empty(len(ids) + 2, dtype=np.int32)
        out[0], out[1:-1], out[-1] = self.bos, ids, self.eos
        return out

    def encode_documents(self, texts: list[str]) -> list[np.ndarray]:
        """`encode_document` of each text (one batch call for a subword model)."""
        if self.ids:
            return [self.document(ids) for ids in self.tokenizer.encode_batch(texts)]
        return [self.encode_document(text) for text in texts]

    def documents_from_ids(self, column) -> list[np.ndarray]:
        """`<bos> ids <eos>` of each row of an `input_ids` column (list of uint16/uint32),
        which holds what `encode` gives for the row's text."""
        column = column.combine_chunks() if hasattr(column, "combine_chunks") else column
        values = pc.list_flatten(column).to_numpy(zero_copy_only=False).astype(np.int32)
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        if len(values) and int(values.max()) >= len(self.tokens):
            raise DataDirError("input_ids: an id outside the vocabulary (another model's ids)")
        return (
            [self.document(ids) for ids in np.split(values, np.cumsum(lengths)[:-1])]
            if len(lengths)
            else []
        )

    def decode(self, ids, unk_placeholder: str = "\ufffd") -> str:
        """Text of `ids`; `<unk>` is shown as `unk_placeholder`, `<bos>`/`<eos>` dropped."""
        if self.ids:
            return self._decode_ids(ids, unk_placeholder)
        out = []
        for i in ids:
            i = int(i)
            if i == self.unk:
                out.append(unk_placeholder)
            elif i not in (self.bos, self.eos):
                out.append(self.tokens[i])
        return self.tokenizer.join(out)

    def _decode_ids(self, ids, unk_placeholder: str) -> str:
        parts, run = [], []
        for i in map(int, ids):
            if i == self.unk:
                parts += [self.tokenizer.decode(run), unk_placeholder]
                run = []
            elif i not in (self.bos, self.eos):
                run.append(i)
        return "".join([*parts, self.tokenizer.decode(run)])


def tokenizer_of(
    entry: dict | str, base_dir: str | None = None, model_bytes: bytes | None = None
) -> Tokenizer:
    """The tokenizer of a manifest's or checkpoint's `tokenizer` entry: a model's files are
    found relative to `base_dir`, or given as bytes (a checkpoint carries its model)."""
    try:
        if model_bytes is None:
            return get_tokenizer(entry, base_dir)
        if entry.get("sha256") and hashlib.sha256(model_bytes).hexdigest() != entry["sha256"]:
            raise ValueError("the model bytes do not match the entry's sha256")
        return tokenizer_class(entry["name"]).from_bytes(model_bytes, source="checkpoint")
    except ValueError as e:
        raise DataDirError(f"tokenizer: {e}") from None


def model_bytes_of(tokenizer: Tokenizer) -> dict:
    """What a checkpoint stores of a subword model so that `lm.generate` needs no data
    directory: `{"tokenizer_model": bytes}` (nothing for characters)."""
    data = getattr(tokenizer, "model_bytes", None)
    return {} if data is None else {"tokenizer_model": data}


def read_vocab_json(data_dir: str, manifest: dict) -> dict:
    """The data directory's `vocab.json` as written by the pipeline (tokens, counts, totals)."""
    path = os.path.join(data_dir, manifest["vocab"])
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise DataDirError(f"{path}: unreadable vocabulary ({e})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("tokens"), list):
        raise DataDirError(f"{path}: not a vocabulary (no token list)")
    return raw


def load_vocab(data_dir: str, manifest: dict) -> Vocab:
    """The data directory's own vocabulary, with its manifest's tokenizer."""
    raw = read_vocab_json(data_dir, manifest)
    return Vocab(raw["tokens"], tokenizer_of(manifest["tokenizer"], data_dir))


def row_group_documents(
    pf: pq.ParquetFile, group: int, vocab: Vocab, skip: int = 0
) -> list[np.ndarray]:
    """Every document of one row group but its first `skip` as `<bos> ids <eos>`: its
    `input_ids` where the shard has them and they are the vocabulary's, else its text encoded."""
    if vocab.ids and INPUT_IDS in pf.schema_arrow.names:
        ids = pf.read_row_group(group, columns=[INPUT_IDS]).column(0)
        return vocab.documents_from_ids(ids.slice(skip))
    texts = pf.read_row_group(group, columns=["text"]).column(0).to_pylist()
    return vocab.encode_documents(texts[skip:])


def iter_documents(data_dir: str, manifest: dict, vocab: Vocab, split: str) -> Iterator[np.ndarray]:
    """Every document of `split` in manifest order as `<bos> .. <eos>` ids (streamed one
    row group at a time)."""
    for path in shard_paths(data_dir, manifest, split):
        pf = pq.ParquetFile(path)
        for group in range(pf.metadata.num_row_groups):
            yield from row_group_documents(pf, group, vocab)


def iter_document_blocks(
    data_dir: str, manifest: dict, vocab: Vocab, split: str, block_tokens: int = 1 << 20
) -> Iterator[np.ndarray]:
    """Whole documents concatenated into blocks of about `block_tokens` ids (for n-gram scoring)."""
    pending, size = [], 0
    for doc in iter_documents(data_dir, manifest, vocab, split):
        pending.append(doc)
        size += len(doc)
        if size >= block_tokens:
            yield np.concatenate(pending)
            pending, size = [], 0
    if pending:
        yield np.concatenate(pending)


def split_chars(data_dir: str, manifest: dict, split: str) -> int:
    """Characters of `split` (sum of `n_chars`, reading only that column)."""
    return sum(
        int(pq.read_table(p, columns=["n_chars"]).column(0).to_numpy().sum())
        for p in shard_paths(data_dir, manifest, split)
    )


class TrainStream(IterableDataset):
    """Infinite stream of `{"x", "y"}` batches of shape (batch_size, block_size).

    Work units are (shard, row group) pairs. Epoch `e` permutes the units with seed (seed, e);
    worker `w` of `W` takes every W-th unit of that order. Inside a unit, documents are shuffled,
    concatenated as `<bos> doc <eos>` and cut with stride `block_size` into contexts of
    `block_size + 1` tokens (so each token is a target once per epoch), which go through a
    seeded shuffle pool of `pool_size` contexts. Targets equal to `<bos>` (the step from one
    document to the next) are set to IGNORE_INDEX. A batch carries its `worker`, `epoch` and
    `index`; pass `start={worker: (epoch, index)}` to resume after the consumed batches.
    `holdout` ({(shard, row group): rows}) leaves out the leading rows of those row groups.
    """

    def __init__(
        self,
        data_dir: str,
        manifest: dict,
        vocab: Vocab,
        batch_size: int,
        block_size: int,
        seed: int = 0,
        split: str = "train",
        pool_size: int = 4096,
        start: dict | None = None,
        holdout: dict | None = None,
        lanes: bool = False,
    ):
        self.paths = shard_paths(data_dir, manifest, split)
        # {(shard, row group): rows}: leading rows never trained on (`lm.holdout`)
        self.holdout = dict(holdout or {})
        self.lanes = lanes  # contiguous rows for a carried hidden state (`lane_batches`)
        self.vocab, self.batch_size, self.block_size = vocab, batch_size, block_size
        self.seed, self.pool_size = seed, max(pool_size, 2 * batch_size)
        self.start = {int(k): tuple(v) for k, v in (start or {}).items()}

    def active_workers(self, workers: int) -> int:
        """How many of `workers` DataLoader workers get units (and so yield batches)."""
        return min(max(workers, 1), len(self.units()))

    def units(self) -> list[tuple[int, int]]:
        return [
            (s, g)
            for s, p in enumerate(self.paths)
            for g in range(pq.ParquetFile(p).metadata.num_row_groups)
        ]

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        units = self.units()
        if not units[worker::workers]:
            return
        epoch, skip = self.start.get(worker, (0, 0))
        while True:
            produced = 0
            for index, (x, y) in enumerate(self.epoch_batches(units, epoch, worker, workers)):
                produced += 1
                if index < skip:
                    continue
                yield {
                    "x": torch.from_numpy(x),
                    "y": torch.from_numpy(y),
                    "worker": worker,
                    "epoch": epoch,
                    "index": index,
                }
            if produced == 0:
                raise DataDirError(
                    "the train split is too small for one batch of "
                    f"{self.batch_size} x {self.block_size} tokens per worker"
                )
            epoch, skip = epoch + 1, 0

    def epoch_batches(self, units, epoch: int, worker: int, workers: int):
        order = np.random.default_rng([self.seed, epoch]).permutation(len(units))
        lanes = Lanes(self.batch_size, self.block_size, self._batch)
        rng = np.random.default_rng([self.seed, epoch, worker, 1])
        T, B = self.block_size, self.batch_size
        files: dict[int, pq.ParquetFile] = {}
        carry = np.empty(0, dtype=np.int32)
        pool = np.empty((0, T + 1), dtype=np.int32)
        for u in order[worker::workers]:
            shard, group = units[u]
            if shard not in files:
                files[shard] = pq.ParquetFile(self.paths[shard])
            pf = files[shard]
            # the leading rows held out for the interpolation (`lm.holdout`) are never read
            docs = row_group_documents(pf, group, self.vocab, self.holdout.get((shard, group), 0))
            docs = [docs[i] for i in rng.permutation(len(docs))]
            if self.lanes:
                yield from lanes.add(docs)
                continue
            stream = np.concatenate([carry, *docs]) if docs else carry
            n = max((len(stream) - 1) // T, 0)
            if n:
                starts = np.arange(n) * T
                pool = np.concatenate([pool, stream[starts[:, None] + np.arange(T + 1)]])
            carry = stream[n * T :]
            if len(pool) >= self.pool_size:
                pool = pool[rng.permutation(len(pool))]
                ready = (len(pool) - self.pool_size // 2) // B * B
                for b in range(0, ready, B):
                    yield self._batch(pool[b : b + B])
                pool = pool[ready:]
        if self.lanes:
            return  # what is left in the lanes (under one context each) waits for no one
        pool = pool[rng.permutation(len(pool))]
        for b in range(0, len(pool) // B * B, B):
            yield self._batch(pool[b : b + B])

    def _batch(self, chunks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = chunks[:, :-1].astype(np.int64)
        y = chunks[:, 1:].astype(np.int64)
        y[y == self.vocab.bos] = IGNORE_INDEX
        return x, y


class Lanes:
    """`batch_size` contiguous token streams: each document goes to the shortest lane, and
    while every lane holds a context of `block_size + 1` tokens, row b of the next batch is
    lane b's next context (stride `block_size`), so row b continues row b of the batch before
    and the model can carry its hidden state from one to the next."""

    def __init__(self, batch_size: int, block_size: int, make_batch):
        self.B, self.T, self.make_batch = batch_size, block_size, make_batch
        self.parts: list[list[np.ndarray]] = [[] for _ in range(batch_size)]
        self.sizes = np.zeros(batch_size, dtype=np.int64)

    def add(self, docs: list[np.ndarray]):
        for doc in docs:
            b = int(np.argmin(self.sizes))
            self.parts[b].append(doc)
            self.sizes[b] += len(doc)
        n = int((self.sizes.min() - 1) // self.T) if self.sizes.min() > self.T else 0
        if not n:
            return
        streams = [np.concatenate(p) for p in self.parts]
        offsets = np.arange(n) * self.T
        windows = offsets[:, None] + np.arange(self.T + 1)
        for k in range(n):
            yield self.make_batch(np.stack([s[windows[k]] for s in streams]))
        for b, s in enumerate(streams):
            rest = s[n * self.T :]
            self.parts[b], self.sizes[b] = [rest], len(rest)


def in_worker_order(batches, workers: int, first: int = 0):
    """Yield DataLoader batches in the round-robin order worker `first`, `first + 1`, ...

    A DataLoader over an IterableDataset yields from workers 0, 1, ... in turn; a resumed run
    must continue with the worker after the last one consumed, so batches that arrive early are
    held back until their turn. `workers` counts the workers that have units of work."""
    workers = max(workers, 1)
    held: dict[int, list] = {w: [] for w in range(workers)}
    turn = first % workers
    for batch in batches:
        held[int(batch["worker"])].append(batch)
        while held[turn]:
            yield held[turn].pop(0)
            turn = (turn + 1) % workers


def data_fingerprint(manifest: dict) -> str:
    return (
        str(manifest.get("input", {}).get("fingerprint", ""))
        + ":"
        + json.dumps({s: manifest["splits"][s].get("tokens") for s in ("train", "val")})
    )
