"""PNG plots of a run: loss curves, validation perplexity against the n-gram baselines, and the
bigram transition heatmap of the most frequent tokens (Japanese labels via the IPAex font)."""

from __future__ import annotations

import numpy as np

from beam_jobs.fonts import use_japanese_font

VISIBLE = {" ": "␣", "\n": "⏎", "\t": "⇥", "\u3000": "□"}


def _pyplot():
    use_japanese_font()  # selects the Agg backend and a CJK font
    from matplotlib import pyplot as plt
    return plt


def label(token: str) -> str:
    return VISIBLE.get(token, token)


def plot_losses(history: list[dict], path: str) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    tokens = [h["tokens_seen"] / 1e6 for h in history]
    ax.plot(tokens, [h["train_loss"] for h in history], "o-", label="訓練損失 (train)")
    ax.plot(tokens, [h["val_loss"] for h in history], "s-", label="検証損失 (val)")
    ax.set_xlabel("学習トークン数 (百万) / training tokens (M)")
    ax.set_ylabel("損失 (nats/token)")
    ax.set_title("損失曲線 / loss curves")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_perplexity(history: list[dict], final: float, baselines: dict, path: str) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    tokens = [h["tokens_seen"] / 1e6 for h in history]
    ax.plot(tokens, [h["val_perplexity"] for h in history], "o-", color="black",
            label="GRU 検証パープレキシティ")
    if tokens:
        ax.scatter([tokens[-1]], [final], marker="*", s=160, color="red", zorder=5,
                   label=f"GRU 最終 (全検証データ) {final:.2f}")
    colors = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"])
    for name, ppl in sorted(baselines.items(), key=lambda kv: -kv[1]):
        ax.axhline(ppl, linestyle="--", color=next(colors), label=f"{name} {ppl:.2f}")
    values = [h["val_perplexity"] for h in history] + list(baselines.values()) + [final]
    if values and max(values) / max(min(values), 1e-9) > 10:
        ax.set_yscale("log")
    ax.set_xlabel("学習トークン数 (百万) / training tokens (M)")
    ax.set_ylabel("パープレキシティ / perplexity")
    ax.set_title("検証パープレキシティと n-gram ベースライン")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_bigram_heatmap(tables, vocab, path: str, top: int = 30) -> None:
    """P(next | previous) from the bigram counts, for the `top` most frequent tokens."""
    plt = _pyplot()
    unigram = tables.counts[1].astype(float).copy()
    unigram[[vocab.unk, vocab.bos, vocab.eos]] = -1
    ids = np.argsort(-unigram, kind="stable")[:top]
    ids = ids[unigram[ids] > 0]
    V = tables.V
    rows = tables.parent(2)
    totals = np.bincount(rows, weights=tables.counts[2], minlength=V)
    matrix = np.zeros((len(ids), len(ids)))
    for i, a in enumerate(ids):
        lo, hi = np.searchsorted(tables.keys[2], [a * V, (a + 1) * V])
        nxt = dict(zip(tables.last(2)[lo:hi].tolist(), tables.counts[2][lo:hi].tolist()))
        matrix[i] = [nxt.get(int(b), 0) / max(totals[a], 1) for b in ids]
    names = [label(vocab.tokens[i]) for i in ids]
    size = max(6.0, 0.28 * len(ids) + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    im = ax.imshow(matrix, cmap="viridis")
    ax.set_xticks(range(len(ids)), names, fontsize=9)
    ax.set_yticks(range(len(ids)), names, fontsize=9)
    ax.set_xlabel("次の文字 / next")
    ax.set_ylabel("前の文字 / previous")
    ax.set_title(f"バイグラム遷移確率 P(次 | 前)(上位 {len(ids)} 文字)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

