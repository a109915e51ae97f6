"""What the manifest and stats.json say about a tokenizer with ids and its token shards
(docs/output_format.md): the model's entry, every token file with its counts and sha256, and
characters per token of each split."""

from __future__ import annotations

from beam_jobs.io.input_ids import input_ids_type
from beam_jobs.io.megatron import megatron_dtype
from beam_jobs.tokens.options import parse_formats
from beam_jobs.tokens.steps import manifest_entry

SPLITS = ("train", "val")


def _files(token_files, fmt: str) -> dict:
    out = {}
    for split in SPLITS:
        files = sorted(
            (f for f in token_files if f.format == fmt and f.split == split), key=lambda f: f.shard
        )
        out[split] = {
            "files": [
                {
                    "path": f.path,
                    "shard": f.shard,
                    "documents": f.documents,
                    "tokens": f.tokens,
                    "sha256": dict(sorted(f.sha256.items())),
                }
                for f in files
            ],
            "documents": sum(f.documents for f in files),
            "tokens": sum(f.tokens for f in files),
        }
    return out


def token_manifest(tokenizer, token_files, options: dict) -> dict:
    """The manifest's `tokenizer` and `tokens` entries."""
    formats = parse_formats(options.get("token_formats", ""))
    vocab_size, eos = tokenizer.vocab_size, tokenizer.eos_id
    tokens: dict = {"formats": list(formats), "vocab_size": vocab_size, "eos_id": eos}
    if "megatron" in formats:
        tokens["megatron"] = {
            "dtype": megatron_dtype(vocab_size).name,
            "layout": "one sequence per document, <eos> appended",
            **_files(token_files, "megatron"),
        }
    if "llmc" in formats:
        tokens["llmc"] = {
            "dtype": "uint16",
            "layout": "256 x int32 header (20240520, 1, tokens); each document after the "
            "end-of-text id",
            **_files(token_files, "llmc"),
        }
    if "parquet" in formats:
        tokens["parquet"] = {
            "column": "input_ids",
            "type": str(input_ids_type(vocab_size)),
            "layout": "the text's ids, no <bos>/<eos>: length n_tokens",
        }
    return {"tokenizer": manifest_entry(tokenizer), "tokens": tokens}


def token_stats(stats: dict, tokenizer) -> dict:
    """stats.json with the tokenizer's name, size and characters per token of each split."""
    splits = stats["splits"]
    chars = {s: splits[s]["chars"] for s in SPLITS}
    tokens = {s: splits[s]["tokens"] for s in SPLITS}
    ratio = {s: chars[s] / tokens[s] if tokens[s] else None for s in SPLITS}
    every = sum(tokens.values())
    ratio["all"] = sum(chars.values()) / every if every else None
    return {
        **stats,
        "tokenizer": {
            "name": tokenizer.name,
            "vocab_size": tokenizer.vocab_size,
            "chars_per_token": ratio,
        },
    }
