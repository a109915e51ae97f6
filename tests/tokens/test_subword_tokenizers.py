"""SentencePiece and byte-level BPE behind the `Tokenizer` interface: exact round trips on real
Japanese text, the pipeline's specials first, deterministic model bytes, save/load, errors."""

import gzip
import json
import os
import pickle
import subprocess
import sys
from dataclasses import asdict

import numpy as np
import pytest
from conftest import ROOT, SAMPLE
from hypothesis import given, settings
from hypothesis import strategies as st

from beam_jobs.text.normalize import normalize_text
from beam_jobs.tokens.bpe import HFTokenizer
from beam_jobs.tokens.sentencepiece import SentencePieceTokenizer
from beam_jobs.tokens.subword import VocabSizeError, load_model_file, load_tokenizer
from beam_jobs.tokens.tokenizers import SPECIAL_TOKENS, get_tokenizer
from beam_jobs.tokens.train import TrainConfig, train_tokenizer

KINDS = ["sentencepiece-unigram", "sentencepiece-bpe", "bpe"]


def config_of(kind: str, vocab_size: int = 1500, threads: int = 2) -> TrainConfig:
    if kind == "bpe":
        return TrainConfig(kind="bpe", vocab_size=vocab_size)
    return TrainConfig(
        kind="sentencepiece",
        vocab_size=vocab_size,
        sentencepiece_type=kind.split("-")[1],
        num_threads=threads,
    )


@pytest.fixture(scope="module")
def sample_texts() -> list[str]:
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as handle:
        return [normalize_text(json.loads(line)["text"]) for line in handle]


@pytest.fixture(scope="module")
def training_texts(sample_texts) -> list[str]:
    """A third of the sample (so the others hold characters the model never saw)."""
    return sample_texts[::3]


@pytest.fixture(scope="module")
def trained(training_texts) -> dict:
    return {kind: train_tokenizer(training_texts, config_of(kind)) for kind in KINDS}


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_is_exact_on_every_sample_document(trained, sample_texts, kind):
    tok = trained[kind]
    encoded = tok.encode_batch(sample_texts)
    unseen = set("".join(sample_texts)) - set("".join(sample_texts[::3]))
    assert unseen, "the held-out documents should hold characters outside the training third"
    for text, ids in zip(sample_texts, encoded):
        assert ids.dtype == np.int32 and ids.min() >= 0 and ids.max() < tok.vocab_size
        assert tok.decode(ids) == text
        assert tok.join(tok.tokenize(text)) == text
        assert tok.count(text) == len(ids)
    if kind.startswith("sentencepiece"):  # byte fallback: nothing is ever <unk>
        assert not any((ids == tok.special_ids()["<unk>"]).any() for ids in encoded)
    assert sum(map(len, encoded)) < 0.8 * sum(map(len, sample_texts))  # subwords, not chars


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=60, deadline=None)
@given(text=st.text(min_size=0, max_size=60))
def test_round_trip_on_any_text(trained, kind, text):
    tok = trained[kind]
    assert tok.decode(tok.encode(text)) == text


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "text",
    ["a\u2581b \u2581", "<eos><unk>x<bos>", "  \n\n\t x \n", "\U0001f600\U00020bb7", "\r\x0b"],
)
def test_round_trip_on_edge_cases(trained, kind, text):
    tok = trained[kind]
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert not set(ids.tolist()) & {1, 2}  # specials in the text are text, not ids


@pytest.mark.parametrize("kind", KINDS)
def test_specials_are_the_first_three_ids(trained, kind):
    tok = trained[kind]
    assert tok.special_ids() == {"<unk>": 0, "<bos>": 1, "<eos>": 2}
    assert tok.specials_first and tok.eos_id == 2
    pieces = tok.pieces()
    assert pieces[:3] == list(SPECIAL_TOKENS) and len(pieces) == tok.vocab_size == 1500
    assert len(set(pieces)) == len(pieces)  # a piece names one id: vocab.json can list them
    assert tok.decode([1, *tok.encode("テスト").tolist(), 2]) == "テスト"


@pytest.mark.parametrize("kind", KINDS)
def test_counts_agree_with_encode(trained, sample_texts, kind):
    tok = trained[kind]
    texts = sample_texts[:20]
    by_id = tok.count_ids(texts)
    assert by_id.shape == (tok.vocab_size,)
    assert by_id.sum() == sum(tok.count(t) for t in texts)
    by_piece = tok.counts(texts[0])
    ids = tok.encode(texts[0])
    assert by_piece == {tok.id_to_piece(i): int((ids == i).sum()) for i in set(ids.tolist())}


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_and_pickle_give_the_same_tokenizer(trained, sample_texts, tmp_path, kind):
    tok = trained[kind]
    config = tok.save(str(tmp_path))
    assert config["model"] in os.listdir(tmp_path) and "tokenizer_meta.json" in os.listdir(tmp_path)
    for other in (
        load_tokenizer(str(tmp_path)),
        get_tokenizer(config, base_dir=str(tmp_path)),
        load_model_file(str(tmp_path / config["model"])),
        pickle.loads(pickle.dumps(tok)),
    ):
        assert other == tok
        assert [a.tolist() for a in other.encode_batch(sample_texts[:30])] == [
            a.tolist() for a in tok.encode_batch(sample_texts[:30])
        ]
    (tmp_path / config["model"]).write_bytes(tok.model_bytes + b"x")
    with pytest.raises(ValueError, match="sha256"):
        load_tokenizer(str(tmp_path))


def _model_bytes_in_subprocess(config: TrainConfig, texts_path, env: dict | None = None) -> bytes:
    code = (
        "import json, sys\n"
        "from beam_jobs.tokens.train import TrainConfig, train_tokenizer\n"
        "texts = json.load(open(sys.argv[2]))\n"
        "tok = train_tokenizer(texts, TrainConfig(**json.loads(sys.argv[1])))\n"
        "sys.stdout.buffer.write(tok.model_bytes)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(asdict(config)), str(texts_path)],
        capture_output=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )
    return out.stdout


@pytest.mark.parametrize("kind", KINDS)
def test_training_is_deterministic_across_runs_and_processes(
    trained, training_texts, tmp_path, kind
):
    again = train_tokenizer(training_texts, config_of(kind))
    assert again.model_bytes == trained[kind].model_bytes
    texts_path = tmp_path / "texts.json"
    texts_path.write_text(json.dumps(training_texts))
    # Another process; for the Hugging Face trainer, also another rayon thread count.
    env = {"RAYON_NUM_THREADS": "1"} if kind == "bpe" else None
    assert _model_bytes_in_subprocess(config_of(kind), texts_path, env) == trained[kind].model_bytes


def test_sentencepiece_thread_count_is_part_of_the_model(training_texts):
    """Why num_threads is a fixed option: another count trains another (equally good) model."""
    texts = training_texts[:40]
    one = train_tokenizer(texts, config_of("sentencepiece-unigram", 1500, threads=1))
    two = train_tokenizer(texts, config_of("sentencepiece-unigram", 1500, threads=2))
    assert one.model_bytes != two.model_bytes
    assert one.info["trainer"]["num_threads"] == 1 and two.info["trainer"]["num_threads"] == 2


@pytest.mark.parametrize("kind", KINDS)
def test_vocab_size_larger_than_the_sample_supports_is_one_clear_line(kind):
    texts = ["吾輩は猫である。名前はまだ無い。"] * 5
    with pytest.raises(VocabSizeError) as error:
        train_tokenizer(texts, config_of(kind, vocab_size=5000))
    message = str(error.value)
    assert "\n" not in message and "--vocab-size 5000 is larger" in message
    assert "--tokenizer-sample-mb" in message


@pytest.mark.parametrize("kind", KINDS)
def test_empty_sample_is_refused(kind):
    with pytest.raises(ValueError, match="sample is empty"):
        train_tokenizer(["", ""], config_of(kind))


def test_vocab_size_below_what_sentencepiece_needs(training_texts):
    with pytest.raises(VocabSizeError, match="raise --vocab-size"):
        train_tokenizer(training_texts[:20], config_of("sentencepiece-unigram", vocab_size=300))


@pytest.mark.parametrize(
    "name,content",
    [
        ("missing.model", None),
        ("broken.model", b"\x00not a model"),
        ("broken.json", b"{not json"),
        ("other.json", b'{"version": "1.0"}'),
        ("empty.model", b""),
        ("model.txt", b"x"),
    ],
)
def test_unreadable_model_files_are_one_line_value_errors(tmp_path, name, content):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError) as error:
        load_model_file(str(path))
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_loading_a_foreign_model_maps_its_specials(trained, tmp_path):
    """A tokenizer.json with GPT-2's single <|endoftext|> has no <unk>/<bos> of ours."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        ["hello world"] * 3,
        trainers.BpeTrainer(
            vocab_size=300,
            special_tokens=["<|endoftext|>"],
            show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    path = tmp_path / "tokenizer.json"
    path.write_text(tok.to_str())
    loaded = load_model_file(str(path))
    assert isinstance(loaded, HFTokenizer)
    assert loaded.special_ids() == {"<unk>": None, "<bos>": None, "<eos>": 0}
    assert not loaded.specials_first and loaded.decode(loaded.encode("hello")) == "hello"
    trained["sentencepiece-unigram"].save(str(tmp_path / "sp"))
    sp = load_model_file(str(tmp_path / "sp" / "tokenizer.model"))
    assert isinstance(sp, SentencePieceTokenizer) and sp.specials_first


def test_a_subword_tokenizer_without_a_model_is_a_clear_error():
    with pytest.raises(ValueError, match="needs a model"):
        get_tokenizer("sentencepiece")
    assert get_tokenizer("char").tokenize("ab") == ["a", "b"]


@pytest.mark.parametrize("kind,vocab_size", [("bpe", 291), ("sentencepiece-unigram", 277)])
def test_special_strings_in_the_training_text_never_become_special_ids(kind, vocab_size):
    texts = ["foo <eos> bar <unk> baz <bos>x"] * 200 + ["吾輩は猫である。"] * 50
    tok = train_tokenizer(texts, config_of(kind, vocab_size=vocab_size))
    for text in ["<eos>", " <eos>", "<unk>", "<bos>x", texts[0]]:
        ids = tok.encode(text)
        assert not set(ids.tolist()) & {0, 1, 2} and tok.decode(ids) == text
