"""The data a run trains on: one or more domains (pipeline output directories) with weights.

A plain `--data DIR` is a mixture of one domain, named `data`, of weight 1; `--data NAME=DIR:W`
(repeated) or `--data NAME=DIR` with `--mix-temperature` name several. Every run goes through
the same code: one training stream per domain, the sampler picks a domain per step (always the
only one, for one domain), evaluation scores each domain and the weighted objective
sum_i w_i * loss_i, which for one domain is that domain's loss, bit for bit.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from lm.data import (
    Vocab,
    data_fingerprint,
    load_manifest,
    read_vocab_json,
    tokenizer_of,
    verify_shards,
)
from lm.errors import MixtureError, OptionError
from lm.mixture import (
    normalize_weights,
    oov_train_tokens,
    parse_domain_spec,
    temperature_weights,
    union_vocab,
)

SINGLE = "data"  # the name of the one domain of a plain --data DIR


@dataclass
class Domain:
    name: str
    dir: str
    weight: float  # normalized; 0: evaluated, never trained on
    manifest: dict


def checked_manifest(data_dir: str) -> dict:
    """The manifest of a directory to train on, its shards checked against it."""
    manifest = load_manifest(data_dir)
    verify_shards(data_dir, manifest)
    return manifest


def resolve_domains(specs: list[str], temperature: float | None = None) -> list[Domain]:
    """The domains of the `--data` values, with normalized weights; `MixtureError` or
    `DataDirError` (one line) for anything that cannot be used."""
    if len(specs) == 1 and "=" not in specs[0]:
        if temperature is not None:
            raise MixtureError("--mix-temperature needs several --data NAME=DIR")
        return [Domain(SINGLE, specs[0], 1.0, checked_manifest(specs[0]))]
    parsed = [parse_domain_spec(spec) for spec in specs]
    names = [name for name, _, _ in parsed]
    if len(set(names)) != len(names):
        raise MixtureError(f"--data: domain names must differ, got {names}")
    manifests = {name: checked_manifest(path) for name, path, _ in parsed}
    if temperature is not None:
        if any(w is not None for _, _, w in parsed):
            raise MixtureError(
                "give the weights either in --data NAME=DIR:WEIGHT or by --mix-temperature"
            )
        weights = temperature_weights(
            {n: manifests[n]["splits"]["train"].get("tokens", 0) for n in names}, temperature
        )
    else:
        if any(w is None for _, _, w in parsed):
            raise MixtureError(
                "--data NAME=DIR needs a weight (NAME=DIR:WEIGHT) or --mix-temperature"
            )
        weights = normalize_weights({n: w for n, _, w in parsed})
    return [Domain(n, path, weights[n], manifests[n]) for n, path, _ in parsed]


def fingerprint_of(parts: list[tuple[str, str, float]]) -> str:
    """Identity of a run's data from (name, data fingerprint, weight) per domain: a resumed run
    must see the same directories' contents with the same weights."""
    return "mix:" + json.dumps([[name, fp, round(weight, 12)] for name, fp, weight in parts])


def run_fingerprint(domains: list[Domain]) -> str:
    return fingerprint_of([(d.name, data_fingerprint(d.manifest), d.weight) for d in domains])


def _tokenizer_key(tokenizer: dict) -> str:
    return json.dumps(tokenizer, sort_keys=True)


def build_vocab(domains: list[Domain], init: dict | None = None) -> Vocab:
    """The model vocabulary: the `--init-from` checkpoint's, or the union of the domains'
    (for one domain, its own vocabulary unchanged)."""
    if init is not None:
        want = _tokenizer_key(init["tokenizer"])
        for d in domains:
            if _tokenizer_key(d.manifest["tokenizer"]) != want:
                raise OptionError(
                    f"--init-from: the checkpoint's tokenizer {init['tokenizer']} differs from "
                    f"{d.dir}'s {d.manifest['tokenizer']}; its ids would mean other tokens"
                )
        return Vocab(
            init["vocab"], tokenizer_of(init["tokenizer"], model_bytes=init.get("tokenizer_model"))
        )
    tokenizers = {_tokenizer_key(d.manifest["tokenizer"]) for d in domains}
    if len(tokenizers) > 1:
        raise MixtureError(f"the domains use different tokenizers: {sorted(tokenizers)}")
    tokenizer = tokenizer_of(domains[0].manifest["tokenizer"], domains[0].dir)
    if tokenizer.has_ids:  # one model: its pieces in id order, in every domain
        return Vocab(read_vocab_json(domains[0].dir, domains[0].manifest)["tokens"], tokenizer)
    tokens, _ = union_vocab([read_vocab_json(d.dir, d.manifest) for d in domains])
    return Vocab(tokens, tokenizer)


def unk_mapping(domains: list[Domain], vocab: Vocab) -> dict:
    """Per domain: its distinct tokens and train tokens that the model vocabulary lacks (they
    become `<unk>`), counting the domain's own `<unk>` too."""
    out = {}
    for d in domains:
        distinct, tokens, total = oov_train_tokens(read_vocab_json(d.dir, d.manifest), vocab.tokens)
        out[d.name] = {
            "distinct": distinct,
            "train_tokens": tokens,
            "train_tokens_total": total,
            "rate": tokens / max(total, 1),
        }
    return out


def objective(results: dict[str, dict], domains: list[Domain]) -> dict:
    """The weighted objective of per-domain evaluation results (`lm.evaluate` dicts): loss
    sum_i w_i * loss_i, perplexity exp(loss), bits/char sum_i w_i * bits/char_i where every
    domain has it, tokens and chars summed."""
    loss = sum(d.weight * results[d.name]["loss"] for d in domains)
    out = {
        "loss": loss,
        "perplexity": math.exp(loss),
        "tokens": sum(results[d.name]["tokens"] for d in domains),
    }
    if all("bits_per_char" in results[d.name] for d in domains):
        out["bits_per_char"] = sum(d.weight * results[d.name]["bits_per_char"] for d in domains)
        out["chars"] = sum(results[d.name]["chars"] for d in domains)
    return out


def weighted_baselines(losses: dict[str, dict[str, float]], weights: dict[str, float]) -> dict:
    """Perplexity exp(sum_i w_i * loss_i) of each n-gram baseline that every trained domain
    has, from per-domain losses ({domain: {baseline: loss}}): the objective of the GRU's
    `val_perplexity`, for the baselines."""
    trained = [name for name, w in weights.items() if w > 0 and name in losses]
    if not trained:
        return {}
    names = [b for b in losses[trained[0]] if all(b in losses[d] for d in trained)]
    return {b: math.exp(sum(weights[d] * losses[d][b] for d in trained)) for b in names}
