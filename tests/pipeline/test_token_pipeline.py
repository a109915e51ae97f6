"""End to end with a subword tokenizer trained in the pipeline: every document's ids decode to
its text, the token shards read back with the trainers' own readers (megatron-core's
IndexedDataset, llm.c's loader, Hugging Face datasets), the counts agree row for row, and the
outputs are byte-identical across runs and worker counts."""

import hashlib
import json
import shutil
from collections import Counter

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest
from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig
from megatron.core.datasets.indexed_dataset import IndexedDataset
from megatron.core.tokenizers import MegatronTokenizer

from beam_jobs.counts.counting import ngrams_of
from beam_jobs.io.megatron import MegatronDataset
from beam_jobs.prepare import main, run
from beam_jobs.tokens.subword import load_tokenizer
from tests.token_readers import dataloader_h_checks, llmc_load_data_shard

VOCAB = "2000"
FLAGS = ["--runner", "FnApiRunner", "--num-shards", "3", "--val-fraction", "0.2", "--no-report"]
SPM = [
    "--tokenizer",
    "sentencepiece",
    "--vocab-size",
    VOCAB,
    "--token-formats",
    "megatron,llmc,parquet",
]


def prepare(input_dir, out_dir, *extra):
    return run(["--input", str(input_dir / "*"), "--output", str(out_dir), *FLAGS, *extra])


def digests(out) -> dict:
    """sha256 of every file a tokenizer run writes after the dedup stage."""
    subdirs = ("train", "val", "ngrams", "tokenizer", "tokens")
    files = [p for sub in subdirs for p in sorted((out / sub).rglob("*")) if p.is_file()]
    files.append(out / "vocab.json")
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope="module")
def spm_run(ja_slice_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("tokens") / "spm"
    return out, prepare(ja_slice_dir, out, *SPM)


def rows(out, split):
    return pq.read_table(out / split).to_pylist()


def test_every_document_decodes_to_its_text(spm_run):
    out, manifest = spm_run
    tokenizer = load_tokenizer(str(out / "tokenizer"))
    assert (
        manifest["tokenizer"]["sha256"]
        == hashlib.sha256((out / "tokenizer" / "tokenizer.model").read_bytes()).hexdigest()
    )
    docs = rows(out, "train") + rows(out, "val")
    assert len(docs) == manifest["splits"]["train"]["rows"] + manifest["splits"]["val"]["rows"]
    for doc in docs:
        assert tokenizer.decode(doc["input_ids"]) == doc["text"], doc["id"]
        assert tokenizer.encode(doc["text"]).tolist() == doc["input_ids"]
        assert doc["n_tokens"] == len(doc["input_ids"])
    assert sum(d["n_tokens"] for d in docs) < sum(d["n_chars"] for d in docs)  # subwords


def test_megatron_files_read_back_with_megatron_core_and_ours(spm_run):
    out, manifest = spm_run
    eos = manifest["tokenizer"]["special_ids"]["<eos>"]
    entry = manifest["tokens"]["megatron"]
    for split in ("train", "val"):
        by_shard = {f["shard"]: f for f in entry[split]["files"]}
        for shard in manifest["splits"][split]["shards"]:
            docs = pq.read_table(out / shard["path"]).to_pylist()
            index = int(shard["path"].split("-")[1])
            if not docs:
                assert index not in by_shard
                continue
            prefix = str(out / by_shard[index]["path"])
            theirs, ours = IndexedDataset(prefix), MegatronDataset(prefix)
            assert len(theirs) == len(ours) == len(docs) == by_shard[index]["documents"]
            assert theirs.index.dtype == np.uint16
            for i, doc in enumerate(docs):  # same documents, same order
                want = [*doc["input_ids"], eos]
                assert theirs[i].tolist() == want and ours[i].tolist() == want
            assert int(theirs.sequence_lengths.sum()) == by_shard[index]["tokens"]
        assert (
            entry[split]["tokens"]
            == manifest["splits"][split]["tokens"] + manifest["splits"][split]["rows"]
        )


def megatron_prefixes(out, manifest, split) -> list[str]:
    return [str(out / f["path"]) for f in manifest["tokens"]["megatron"][split]["files"]]


def test_megatron_core_builds_its_gpt_dataset_from_the_shards(spm_run, tmp_path):
    """What Megatron-LM's pretrain_gpt.py does with --train-data-path/--valid-data-path and
    --tokenizer-type GPTSentencePieceTokenizer (docs/tokens.md): its own tokenizer's end of
    document is our <eos>, and every document inside a sample is one of ours, whole."""
    out, manifest = spm_run
    # GPTDataset writes its index cache beside the .bin files: build it on a copy.
    shutil.copytree(out / "tokens", tmp_path / "tokens")
    tokenizer = MegatronTokenizer.from_pretrained(
        tokenizer_path=str(out / "tokenizer" / "tokenizer.model"),
        metadata_path={"library": "sentencepiece"},
    )
    eos = manifest["tokens"]["eos_id"]
    assert tokenizer.eod == eos and tokenizer.vocab_size == int(VOCAB)
    config = GPTDatasetConfig(
        random_seed=1,
        sequence_length=1024,
        blend_per_split=[
            (megatron_prefixes(tmp_path, manifest, "train"), None),
            (megatron_prefixes(tmp_path, manifest, "val"), None),
            None,
        ],
        tokenizer=tokenizer,
        reset_position_ids=False,
        reset_attention_mask=False,
        eod_mask_loss=False,
    )
    train, val, _ = BlendedMegatronDatasetBuilder(
        GPTDataset, [128, 32, 0], lambda: True, config
    ).build()
    # Each document as a string of chr(id), so that "is a window of a document" is `in`.
    docs = [
        "".join(map(chr, d["input_ids"])) for split in ("train", "val") for d in rows(out, split)
    ]
    whole = 0
    for dataset in (train, val):
        for k in range(len(dataset)):
            sample = dataset[k]
            ids = [*sample["tokens"].tolist(), int(sample["labels"][-1])]
            assert sample["labels"].tolist()[:-1] == ids[1:-1]
            pieces = "".join(map(chr, ids)).split(chr(eos))
            if len(pieces) == 1:  # inside one document
                assert any(pieces[0] in d for d in docs)
                continue
            assert any(d.endswith(pieces[0]) for d in docs)
            assert any(d.startswith(pieces[-1]) for d in docs)
            for piece in pieces[1:-1]:  # between two ends: one of our documents, whole
                assert piece in docs
                whole += 1
    assert whole > 0


def test_concatenated_megatron_bins_are_nanogpt_train_and_val_bins(spm_run, tmp_path):
    """nanoGPT's train.py memmaps data/NAME/{train,val}.bin as uint16 with no header: the
    Megatron .bin files of a split, concatenated in shard order, are exactly that."""
    out, manifest = spm_run
    eos = manifest["tokens"]["eos_id"]
    for split in ("train", "val"):
        target = tmp_path / f"{split}.bin"
        with open(target, "wb") as handle:
            for prefix in megatron_prefixes(out, manifest, split):
                handle.write(open(prefix + ".bin", "rb").read())
        got = np.memmap(target, dtype=np.uint16, mode="r")
        want = [t for d in rows(out, split) for t in [*d["input_ids"], eos]]
        assert got.tolist() == want


def test_llmc_files_read_back_as_llmc_reads_them(spm_run):
    out, manifest = spm_run
    eot = manifest["tokens"]["eos_id"]
    for split in ("train", "val"):
        files = manifest["tokens"]["llmc"][split]["files"]
        assert files, split
        want = []
        for shard in manifest["splits"][split]["shards"]:
            want += [[eot, *d["input_ids"]] for d in pq.read_table(out / shard["path"]).to_pylist()]
        got = []
        for f in files:
            assert f["path"].startswith(f"tokens/llmc/{split}_")
            tokens = llmc_load_data_shard(str(out / f["path"]))
            assert dataloader_h_checks(str(out / f["path"])) == len(tokens) == f["tokens"]
            starts = np.flatnonzero(tokens == eot)
            got += [tokens[a:b].tolist() for a, b in zip(starts, [*starts[1:], len(tokens)])]
        assert got == want


def test_input_ids_load_with_hugging_face_datasets(spm_run):
    out, _ = spm_run
    files = {"train": f"{out}/train/*.parquet", "validation": f"{out}/val/*.parquet"}  # as the docs
    loaded = datasets.load_dataset("parquet", data_files=files, cache_dir=str(out.parent / "hf"))
    assert str(loaded["train"].features["input_ids"].feature.dtype) == "uint16"
    for split, name in (("train", "train"), ("validation", "val")):
        ours = pq.read_table(out / name, columns=["id", "input_ids"]).to_pylist()
        assert loaded[split]["id"] == [r["id"] for r in ours]
        assert loaded[split]["input_ids"] == [r["input_ids"] for r in ours]


def test_counts_agree_row_for_row(spm_run):
    out, manifest = spm_run
    stats = json.loads((out / "stats.json").read_text())
    vocab = json.loads((out / "vocab.json").read_text())
    tokenizer = load_tokenizer(str(out / "tokenizer"))
    train = rows(out, "train")
    for split in ("train", "val"):
        n_tokens = sum(r["n_tokens"] for r in rows(out, split))
        assert stats["splits"][split]["tokens"] == manifest["splits"][split]["tokens"] == n_tokens
    assert stats["tokenizer"]["chars_per_token"]["train"] == pytest.approx(
        stats["splits"]["train"]["chars"] / stats["splits"]["train"]["tokens"]
    )
    assert vocab["tokens"][3:] == tokenizer.pieces()[3:] and len(vocab["tokens"]) == int(VOCAB)
    counts = np.bincount(np.concatenate([r["input_ids"] for r in train]), minlength=int(VOCAB))
    assert vocab["counts"][3:] == counts[3:].tolist()
    assert vocab["counts"][1] == vocab["counts"][2] == len(train)
    expected = Counter()
    for r in train:
        expected.update(ngrams_of([tokenizer.id_to_piece(i) for i in r["input_ids"]], 3))
    table = pq.read_table(out / "ngrams").to_pylist()
    got = Counter({tuple(r["ngram"]): r["count"] for r in table})
    assert got == expected


def test_the_tokenizer_is_trained_on_train_documents_after_dedup(spm_run):
    out, manifest = spm_run
    sample = manifest["tokenizer"]["sample"]
    stats = json.loads((out / "stats.json").read_text())
    # The slice is far below the 32 MB budget: the sample is the whole train split.
    assert sample["documents"] == manifest["splits"]["train"]["rows"] < stats["read"]
    assert sample["bytes"] == sum(len(r["text"].encode()) for r in rows(out, "train"))


def test_two_runs_and_two_worker_processes_give_identical_files(spm_run, ja_slice_dir, tmp_path):
    out, _ = spm_run
    again, multi = tmp_path / "again", tmp_path / "multi"
    prepare(ja_slice_dir, again, *SPM)
    prepare(
        ja_slice_dir,
        multi,
        *SPM,
        "--direct_num_workers=2",
        "--direct_running_mode=multi_processing",
    )
    want = digests(out)
    assert len([p for p in want if p.startswith("tokens/")]) >= 10
    assert digests(again) == want
    assert digests(multi) == want


def resumed(spm_run, tmp_path, name):
    """A copy of the run's directory, to rerun its final steps on its dedup stage."""
    copy = tmp_path / name
    shutil.copytree(spm_run[0], copy)
    return copy


def test_an_existing_model_gives_the_same_ids(spm_run, ja_slice_dir, tmp_path):
    out, manifest = spm_run
    model = tmp_path / "given.model"
    shutil.copy(out / "tokenizer" / "tokenizer.model", model)
    copy = resumed(spm_run, tmp_path, "loaded")
    again = prepare(
        ja_slice_dir,
        copy,
        "--resume",
        "--overwrite",
        "--tokenizer-model",
        str(model),
        "--token-formats",
        "megatron,llmc,parquet",
    )
    assert again["tokenizer"]["sha256"] == manifest["tokenizer"]["sha256"]
    assert again["tokenizer"]["source"] == str(model)
    same = {k: v for k, v in digests(copy).items() if k != "tokenizer/tokenizer_meta.json"}
    assert same == {k: v for k, v in digests(out).items() if k != "tokenizer/tokenizer_meta.json"}


def test_byte_level_bpe_round_trips_too(spm_run, ja_slice_dir, tmp_path):
    copy = resumed(spm_run, tmp_path, "bpe")
    manifest = prepare(
        ja_slice_dir,
        copy,
        "--resume",
        "--overwrite",
        "--tokenizer",
        "bpe",
        "--vocab-size",
        "500",
        "--token-formats",
        "parquet",
    )
    assert manifest["tokenizer"]["name"] == "bpe" and manifest["tokens"]["formats"] == ["parquet"]
    assert not (copy / "tokens").exists()  # the earlier run's token files went with it
    tokenizer = load_tokenizer(str(copy / "tokenizer"))
    for doc in rows(copy, "train") + rows(copy, "val"):
        assert tokenizer.decode(doc["input_ids"]) == doc["text"]


def failed(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_a_vocabulary_the_sample_cannot_support_is_a_clear_error(
    spm_run, ja_slice_dir, tmp_path, capsys
):
    copy = resumed(spm_run, tmp_path, "too_big")
    err = failed(
        capsys,
        [
            "--input",
            str(ja_slice_dir / "*"),
            "--output",
            str(copy),
            *FLAGS,
            "--resume",
            "--overwrite",
            "--tokenizer",
            "sentencepiece",
            "--vocab-size",
            "60000",
            "--token-formats",
            "megatron,llmc,parquet",
        ],
    )
    assert "--vocab-size 60000 is larger than the tokenizer sample supports" in err
    # Nothing that looks complete: no manifest, no model, no token or document shards.
    for name in ("manifest.json", "tokenizer", "tokens", "train", "val", "vocab.json"):
        assert not (copy / name).exists(), name
    assert (copy / "_stages" / "dedup" / "stage.json").exists()  # --resume reuses it


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            ["--tokenizer", "sentencepiece", "--vocab-size", "70000", "--token-formats", "llmc"],
            "llmc token format stores uint16 ids",
        ),
        (["--tokenizer-model", "/nonexistent/x.model"], "/nonexistent/x.model: no such"),
        (["--tokenizer-model", "GARBAGE"], "not a readable sentencepiece model"),
        (
            ["--tokenizer", "char", "--token-formats", "megatron"],
            "needs a tokenizer with its own ids",
        ),
        (["--vocab-size", "1000"], "--vocab-size applies to a trained tokenizer"),
        (["--tokenizer", "bpe", "--token-formats", "numpy"], "unknown format 'numpy'"),
        (["--tokenizer", "bpe", "--max-vocab", "100"], "--max-vocab"),
        (["--tokenizer", "bpe", "--sentencepiece-type", "bpe"], "--sentencepiece-type"),
    ],
)
def test_bad_token_flags_fail_before_any_work(ja_slice_dir, tmp_path, capsys, extra, message):
    garbage = tmp_path / "garbage.model"
    garbage.write_bytes(b"not a model at all")
    extra = [str(garbage) if a == "GARBAGE" else a for a in extra]
    out = tmp_path / "out"
    err = failed(capsys, ["--input", str(ja_slice_dir / "*"), "--output", str(out), *FLAGS, *extra])
    assert message in err
    assert not out.exists()
