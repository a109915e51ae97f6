"""PNG report of a prepared corpus: length distribution per split, most frequent tokens."""

from __future__ import annotations

import io

from apache_beam.io.filesystems import FileSystems

from beam_jobs.io.fs import atomic_create
from beam_jobs.outputs.fonts import use_japanese_font


def _save(fig, path: str) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    with atomic_create(path) as handle:
        handle.write(buf.getvalue())


def draw_report(output_dir: str, stats: dict, vocab: dict, top_k: int = 40) -> list[str]:
    """Write the report PNGs; returns their paths relative to `output_dir`."""
    use_japanese_font()
    import matplotlib.pyplot as plt

    written = []
    fig, ax = plt.subplots(figsize=(7, 4))
    for split, info in stats["splits"].items():
        hist = info["length_histogram"]
        if hist:
            # Shares, not counts, so the small val split is comparable with train.
            lows = [max(int(k), 1) for k in hist]
            shares = [v / info["documents"] for v in hist.values()]
            ax.step(lows, shares, where="post", label=f"{split} ({info['documents']} docs)")
    ax.set_xscale("log")
    ax.set_xlabel("文書の長さ (文字, log2 bins) / document length in characters")
    ax.set_ylabel("share of documents")
    ax.set_title("Length distribution per split")
    ax.legend()
    rel = "report/lengths.png"
    _save(fig, FileSystems.join(output_dir, rel))
    plt.close(fig)
    written.append(rel)

    specials = set(vocab["special_tokens"])
    pairs = [(t, c) for t, c in zip(vocab["tokens"], vocab["counts"]) if t not in specials]
    pairs = sorted(pairs, key=lambda tc: -tc[1])[:top_k]  # a subword vocabulary is in id order
    if pairs:
        labels = [{" ": "␣", "\n": "⏎", "\t": "⇥"}.get(t, t) for t, _ in pairs]
        fig, ax = plt.subplots(figsize=(max(7, 0.28 * len(pairs)), 4))
        ax.bar(range(len(pairs)), [c for _, c in pairs])
        ax.set_xticks(range(len(pairs)), labels, fontsize=10)
        ax.set_ylabel("count in train")
        ax.set_title(f"上位 {len(pairs)} トークン / top tokens")
        rel = "report/top_tokens.png"
        _save(fig, FileSystems.join(output_dir, rel))
        plt.close(fig)
        written.append(rel)
    return written
