"""A first look at the GRU's hidden units: which units go with simple features of the text?

This is a correlational probe, not a circuit analysis. It records the top layer's hidden state
after each character of a validation text, computes the Pearson correlation of every unit with a
few features of the position, and reports the units with the largest |r|. As a control, the
same is done for a randomly initialized GRU of the same shape: a correlation that an untrained
network reaches as well says that the feature is visible in the recent input, not that the
trained model learned to track it.

Features (per position t, after reading character t; see `text_features`):
* `in_quote`: inside 「…」, 『…』 or “…” (opening bracket included, closing bracket excluded);
* `in_parens`: inside (…) (after NFKC the full-width parentheses are ASCII);
* `after_newline`: character t is a line break (the next character starts a line);
* `run_position`: 0-based position of t in its run of one script (hiragana, katakana, kanji,
  Latin letters/digits; anything else is a run of length 1), capped at 15;
* `katakana`: character t is katakana (an input feature, for reference).
"""

from __future__ import annotations

import unicodedata

import numpy as np
import torch

FEATURES = ("in_quote", "in_parens", "after_newline", "run_position", "katakana")
OPEN_QUOTES, CLOSE_QUOTES = "「『“", "」』”"
RUN_CAP = 15


def script_of(ch: str) -> str:
    cp = ord(ch)
    if 0x3041 <= cp <= 0x309F:
        return "hiragana"
    if 0x30A0 <= cp <= 0x30FF or 0x31F0 <= cp <= 0x31FF:
        return "katakana"
    if 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or ch in "々〆":
        return "kanji"
    if ch.isascii() and ch.isalnum():
        return "latin"
    if unicodedata.category(ch).startswith("L"):
        return "other_letter"
    return "other"


def text_features(text: str) -> dict[str, np.ndarray]:
    """Each feature as a float array with one value per character of `text`."""
    n = len(text)
    out = {name: np.zeros(n) for name in FEATURES}
    quote = parens = 0
    run, prev_script = 0, None
    for t, ch in enumerate(text):
        if ch in OPEN_QUOTES:
            quote += 1
        elif ch in CLOSE_QUOTES:
            quote = max(quote - 1, 0)
        if ch == "(":
            parens += 1
        elif ch == ")":
            parens = max(parens - 1, 0)
        out["in_quote"][t] = float(quote > 0)
        out["in_parens"][t] = float(parens > 0)
        out["after_newline"][t] = float(ch == "\n")
        script = script_of(ch)
        run = run + 1 if script == prev_script and script != "other" else 0
        prev_script = script
        out["run_position"][t] = min(run, RUN_CAP)
        out["katakana"][t] = float(script == "katakana")
    return out


@torch.no_grad()
def hidden_states(model, ids: np.ndarray, chunk: int = 512) -> np.ndarray:
    """(len(ids), hidden): the top GRU layer's state after reading each id (state carried)."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    h, parts = None, []
    for start in range(0, len(ids), chunk):
        x = torch.from_numpy(np.asarray(ids[start : start + chunk], dtype=np.int64))[None]
        out, h = model.gru(model.embed(x.to(device)), h)
        parts.append(out[0].float().cpu().numpy())
    model.train(was)
    return np.concatenate(parts) if parts else np.zeros((0, model.config.hidden))


def correlations(acts: np.ndarray, feature: np.ndarray) -> np.ndarray:
    """Pearson r of every column of `acts` (T, H) with `feature` (T,); 0 where either is
    constant."""
    a = acts - acts.mean(axis=0)
    f = feature - feature.mean()
    denom = np.sqrt((a * a).sum(axis=0) * (f * f).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * f[:, None]).sum(axis=0) / denom
    return np.where(denom > 0, r, 0.0)


def document_activations(model, vocab, texts: list[str], max_chars: int):
    """Concatenated (activations, features, text) over whole documents, each read from
    `<bos>`, up to `max_chars` characters; positions are the characters (not `<bos>`)."""
    acts, feats, kept = [], {k: [] for k in FEATURES}, []
    used = 0
    for text in texts:
        if used >= max_chars:
            break
        text = text[: max_chars - used]
        used += len(text)
        ids = np.concatenate([[vocab.bos], vocab.encode(text)])
        acts.append(hidden_states(model, ids)[1:])
        for k, v in text_features(text).items():
            feats[k].append(v)
        kept.append(text)
    if not acts:
        raise ValueError("no validation text to probe")
    return (np.concatenate(acts), {k: np.concatenate(v) for k, v in feats.items()}, "".join(kept))


def probe(
    model, vocab, texts: list[str], max_chars: int = 20_000, top: int = 5, control_seed: int = 0
) -> dict:
    """Top units per feature for `model` and, as a control, for a random GRU of its shape."""
    from lm.model import GRULM, GRUConfig

    acts, feats, text = document_activations(model, vocab, texts, max_chars)
    torch.manual_seed(control_seed)
    control = GRULM(GRUConfig(**{**vars(model.config)})).to(next(model.parameters()).device)
    control_acts, _, _ = document_activations(control, vocab, texts, max_chars)
    result = {"chars": int(len(text)), "units": int(acts.shape[1]), "features": {}}
    for name, f in feats.items():
        r = correlations(acts, f)
        rc = correlations(control_acts, f)
        order = np.argsort(-np.abs(r), kind="stable")[:top]
        result["features"][name] = {
            "positive_fraction" if name != "run_position" else "mean": float(f.mean()),
            "top_units": [{"unit": int(u), "r": float(r[u])} for u in order],
            "max_abs_r": float(np.abs(r).max()),
            "control_max_abs_r": float(np.abs(rc).max()),
        }
    result["_acts"], result["_features"], result["_text"] = acts, feats, text
    return result


def public(result: dict) -> dict:
    """`probe`'s result without the arrays (for JSON)."""
    return {k: v for k, v in result.items() if not k.startswith("_")}
