"""PNG plots of a run: loss curves, validation perplexity against the n-gram baselines, and the
bigram transition heatmap of the most frequent tokens (Japanese labels via the IPAex font)."""

from __future__ import annotations

import os

import numpy as np

from beam_jobs.outputs.fonts import use_japanese_font

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
    trained = [
        (t, h["train_loss"]) for t, h in zip(tokens, history) if h["train_loss"] is not None
    ]  # None: the evaluation before training
    ax.plot([t for t, _ in trained], [v for _, v in trained], "o-", label="訓練損失 (train)")
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
    ax.plot(
        tokens,
        [h["val_perplexity"] for h in history],
        "o-",
        color="black",
        label="GRU 検証パープレキシティ",
    )
    if tokens:
        ax.scatter(
            [tokens[-1]],
            [final],
            marker="*",
            s=160,
            color="red",
            zorder=5,
            label=f"GRU 最終 (全検証データ) {final:.2f}",
        )
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


def plot_domains(history: list[dict], finals: dict, path: str) -> None:
    """Validation perplexity of every domain and of the weighted objective over one run."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    steps = [h["step"] for h in history]
    colors = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"])
    for name in history[0]["domains"] if history else {}:
        color = next(colors)
        weight = history[0]["domains"][name]["weight"]
        ax.plot(
            steps,
            [h["domains"][name]["val_perplexity"] for h in history],
            "o-",
            color=color,
            label=f"{name} (w={weight:.2f})",
        )
        if name in finals and steps:
            ax.scatter([steps[-1]], [finals[name]], marker="*", s=140, color=color, zorder=5)
    ax.plot(steps, [h["val_perplexity"] for h in history], "k--", label="重み付き / weighted")
    ax.set_xlabel("ステップ / step")
    ax.set_ylabel("検証パープレキシティ / val perplexity")
    ax.set_title("ドメイン別の検証パープレキシティ(★: 全検証データ)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _series(metrics: dict, name: str | None, offset: int) -> tuple[list, list]:
    """(steps + offset, val perplexity of domain `name`, or of the weighted objective)."""
    hs = [h for h in metrics["history"] if h["step"] > 0 or offset > 0]  # not the untrained
    ys = [h["domains"][name]["val_perplexity"] if name else h["val_perplexity"] for h in hs]
    return [offset + h["step"] for h in hs], ys


def plot_continued_pretraining(pretrain: dict | None, runs: dict[str, dict], path: str) -> None:
    """General and domain validation perplexity across pretraining (`pretrain`, a mixture
    run's metrics.json; its step-0 evaluation of the untrained model is left out) and each
    continued-pretraining run (label -> metrics.json), which start where the pretraining ended:
    one panel per domain and one for each run's weighted objective, x = training steps overall,
    log scale. The curves are the periodic evaluations (a fixed prefix of each validation
    split)."""
    plt = _pyplot()
    from matplotlib.ticker import FuncFormatter

    names = list(next(iter(runs.values()))["domains"]) if runs else list(pretrain["domains"])
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(4.6 * (len(names) + 1), 4.2))
    offset = pretrain["steps"] if pretrain else 0
    panels = [*names, None]
    for ax, name in zip(axes, panels):
        if pretrain and name is not None:
            xs, ys = _series(pretrain, name, 0)
            ax.plot(xs, ys, "k-o", ms=3, label="事前学習 / pretraining")
        colors = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"])
        for label_, m in runs.items():
            xs, ys = _series(m, name, offset)
            ax.plot(xs, ys, "-o", ms=3, color=next(colors), label=label_)
        if pretrain:
            ax.axvline(offset, color="gray", lw=0.8, ls=":")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_title(f"{name} 検証 PPL" if name else "重み付き目的関数 / weighted objective")
        ax.set_xlabel("ステップ / step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("パープレキシティ / perplexity")
    fig.suptitle("継続事前学習: 汎用ドメインの忘却とドメイン適応", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_transition_maps(
    left: np.ndarray, right: np.ndarray, names: list[str], path: str, titles: tuple[str, str]
) -> None:
    """Two transition maps side by side (rows: previous character, columns: next character,
    the last column "他" = every other token), on one colour scale."""
    plt = _pyplot()
    n = len(names)
    size = max(5.0, 0.26 * n + 2)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1.2, size * 0.95))
    vmax = float(np.nanmax([np.nanmax(left[:, :-1]), np.nanmax(right[:, :-1])]))
    cols = [label(c) for c in names] + ["他"]
    rows = [label(c) for c in names]
    for ax, matrix, title in zip(axes, (left, right), titles):
        im = ax.imshow(matrix, cmap="viridis", vmin=0, vmax=vmax, aspect="auto")
        ax.set_xticks(range(len(cols)), cols, fontsize=8)
        ax.set_yticks(range(len(rows)), rows, fontsize=8)
        ax.set_xlabel("次の文字 / next")
        ax.set_ylabel("前の文字 / previous")
        ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=axes, fraction=0.025)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def plot_probe(result: dict, path: str, window: int = 90) -> None:
    """Top |r| per feature (trained vs the random-init control), and the best unit's activation
    for in_quote and run_position over a stretch of the probed text."""
    plt = _pyplot()
    feats = list(result["features"])
    fig = plt.figure(figsize=(12, 8))
    grid = fig.add_gridspec(3, 1, height_ratios=[1.1, 1, 1])
    ax = fig.add_subplot(grid[0])
    x = np.arange(len(feats))
    trained = [result["features"][f]["max_abs_r"] for f in feats]
    control = [result["features"][f]["control_max_abs_r"] for f in feats]
    ax.bar(x - 0.2, trained, 0.4, label="学習済み GRU / trained")
    ax.bar(x + 0.2, control, 0.4, label="ランダム初期化 / random init (control)")
    for i, f in enumerate(feats):
        unit = result["features"][f]["top_units"][0]
        ax.annotate(
            f"#{unit['unit']} r={unit['r']:+.2f}",
            (i - 0.2, trained[i]),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_xticks(x, feats)
    ax.set_ylabel("max |r| over units")
    ax.set_ylim(0, 1.1)
    ax.set_title(
        f"隠れユニットと特徴の相関(検証テキスト {result['chars']:,} 文字, "
        f"{result['units']} ユニット)"
    )
    ax.legend(fontsize=8)
    text, acts, features = result["_text"], result["_acts"], result["_features"]
    for k, name in enumerate(("in_quote", "run_position")):
        ax = fig.add_subplot(grid[k + 1])
        f = features[name]
        changes = np.flatnonzero(np.diff(f) != 0) if name == "in_quote" else np.array([0])
        start = int(max(changes[0] - window // 3, 0)) if len(changes) else 0
        stop = min(start + window, len(text))
        unit = result["features"][name]["top_units"][0]["unit"]
        xs = np.arange(start, stop)
        ax.plot(xs, acts[start:stop, unit], color="black", lw=1.2, label=f"unit #{unit}")
        ax2 = ax.twinx()
        ax2.fill_between(
            xs, 0, f[start:stop], step="mid", alpha=0.25, color="tab:orange", label=name
        )
        ax2.set_yticks([])
        ax.set_xticks(xs, [label(c) for c in text[start:stop]], fontsize=6)
        ax.set_xlim(start - 0.5, stop - 0.5)
        ax.set_ylabel("activation")
        ax.set_title(f"{name}: 最も相関するユニット #{unit}(橙: 特徴の値)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_run(out: str, domains, vocab, metrics: dict) -> None:
    """The plots of one training run in `out`: losses, perplexity against the baselines, the
    per-domain curves (several domains) and each domain's bigram heatmap."""
    from lm.ngram import CountTables

    several = len(domains) > 1
    plot_losses(metrics["history"], os.path.join(out, "loss.png"))
    plot_perplexity(
        metrics["history"],
        metrics["val_perplexity"],
        metrics["baselines"],
        os.path.join(out, "perplexity.png"),
    )
    if several:
        plot_domains(
            metrics["history"],
            {k: v["val_perplexity"] for k, v in metrics["domains"].items()},
            os.path.join(out, "domains.png"),
        )
    for d in domains:
        if d.manifest["ngrams"]["order"] >= 2:
            tables = CountTables.from_parquet(d.dir, d.manifest, vocab, max_order=2)
            name = f"bigram_heatmap_{d.name}.png" if several else "bigram_heatmap.png"
            plot_bigram_heatmap(tables, vocab, os.path.join(out, name))


def continued_pretraining_table(pretrain: dict, runs: dict[str, dict]) -> str:
    """Markdown table: whole-split perplexity per domain before (the pretrained model) and after
    each continued-pretraining run, with the change and the run's own weighted objective."""
    names = list(pretrain["domains"])
    head = [
        "run",
        *(f"{n} weight" for n in names),
        *(f"{n} ppl" for n in names),
        *(f"Δ {n}" for n in names),
        "weighted ppl",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    before = {n: pretrain["domains"][n]["val_perplexity"] for n in names}

    def row(label_, m, weights):
        ppl = {n: m["domains"][n]["val_perplexity"] for n in names}
        cells = [
            label_,
            *(f"{weights[n]:.2f}" for n in names),
            *(f"{ppl[n]:.3f}" for n in names),
            *(f"{ppl[n] - before[n]:+.3f} ({(ppl[n] / before[n] - 1) * 100:+.1f}%)" for n in names),
            f"{m['val_perplexity']:.3f}",
        ]
        return "| " + " | ".join(cells) + " |"

    lines.append(row("pretrained (before)", pretrain, pretrain["mixture"]["weights"]))
    for label_, m in runs.items():
        lines.append(row(label_, m, m["mixture"]["weights"]))
    return "\n".join(lines)


def main(argv=None) -> int:
    """`python -m lm.plots --pretrain RUN --run LABEL=RUN ... --out PNG`: the continued
    pretraining plot and table from mixture runs' metrics.json."""
    import argparse

    from lm.errors import LMError, exit_with
    from lm.metrics import read_metrics

    ap = argparse.ArgumentParser(
        prog="python -m lm.plots", description="Plot and tabulate continued-pretraining runs."
    )
    ap.add_argument("--pretrain", required=True, help="run directory of the pretraining")
    ap.add_argument(
        "--run",
        action="append",
        default=[],
        metavar="LABEL=RUN",
        help="a continued-pretraining run directory (repeat)",
    )
    ap.add_argument("--out", required=True, help="PNG to write")
    args = ap.parse_args(argv)
    try:
        pretrain = read_metrics(args.pretrain)
        runs = {spec.split("=", 1)[0]: read_metrics(spec.split("=", 1)[1]) for spec in args.run}
    except LMError as e:
        return exit_with(e)
    plot_continued_pretraining(pretrain, runs, args.out)
    print(continued_pretraining_table(pretrain, runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
