"""Training throughput of the full `lm` data path next to a bare loop over in-memory tensors.

    python benchmarks/bench_lm_datapath.py --data /work/out/ja_full [--steps 40] [--workers 0]

Both loops train the same GRU (same batch size and context length) with the same step
function, one step of each in turn (so load from other processes hits both alike). The data
path reads Parquet row groups, tokenizes, shuffles and batches (`lm.data.TrainStream` through
a DataLoader); the bare loop iterates over batches that were materialized as tensors
beforehand. The report gives the median over rounds of each loop's
tokens/s and the data path's overhead. The data path alone (no training) is timed too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from contextlib import nullcontext

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from lm.data import IGNORE_INDEX, TrainStream, in_worker_order, load_manifest, load_vocab  # noqa: E402
from lm.model import GRULM, GRUConfig  # noqa: E402


def make_step(model, optimizer, amp: bool):
    def step(x, y):
        with torch.autocast("cpu", dtype=torch.bfloat16) if amp else nullcontext():
            loss, targets = model.loss(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return int(targets)

    return step


def batches_from_data_path(args, manifest, vocab, seed):
    stream = TrainStream(args.data, manifest, vocab, args.batch_size, args.block_size, seed=seed)
    loader = DataLoader(
        stream,
        batch_size=None,
        num_workers=args.workers,
        prefetch_factor=4 if args.workers else None,
        generator=torch.Generator().manual_seed(seed),
    )
    return in_worker_order(loader, stream.active_workers(args.workers))


def interleaved(step, memory, data, steps: int, warmup: int) -> tuple[float, float]:
    """Tokens/s of the bare loop and of the data path, one step of each in turn, so both see
    the same machine load. The data path's clock includes fetching its next batch."""
    data = iter(data)
    for b in memory[:warmup]:
        step(b["x"], b["y"])
    for _ in range(warmup):
        b = next(data)
        step(b["x"], b["y"])
    bare_t = data_t = 0.0
    bare_n = data_n = 0
    for i in range(steps):
        b = memory[warmup + i]
        start = time.perf_counter()
        bare_n += step(b["x"], b["y"])
        mid = time.perf_counter()
        b = next(data)
        data_n += step(b["x"], b["y"])
        data_t += time.perf_counter() - mid
        bare_t += mid - start
    return bare_n / bare_t, data_n / data_t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="pipeline output directory")
    ap.add_argument("--steps", type=int, default=40, help="timed steps per round")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--block-size", type=int, default=128)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--emb-dim", type=int, default=128)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--amp", choices=("off", "bf16"), default="bf16")
    ap.add_argument("--json", help="write the results here too")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    manifest = load_manifest(args.data)
    vocab = load_vocab(args.data, manifest)
    torch.manual_seed(0)
    model = GRULM(GRUConfig(len(vocab), args.emb_dim, args.hidden))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    step = make_step(model, optimizer, args.amp == "bf16")
    per_round = args.steps + args.warmup

    # the bare loop's batches: materialized tensors, taken from the same stream
    source = batches_from_data_path(args, manifest, vocab, seed=1)
    memory = [{"x": b["x"].clone(), "y": b["y"].clone()} for _, b in zip(range(per_round), source)]
    del source

    start = time.perf_counter()
    it = batches_from_data_path(args, manifest, vocab, seed=2)
    tokens = sum(int((next(it)["y"] != IGNORE_INDEX).sum()) for _ in range(4 * per_round))
    alone = tokens / (time.perf_counter() - start)

    bare, data = [], []
    for r in range(args.rounds):
        b, d = interleaved(
            step,
            memory,
            batches_from_data_path(args, manifest, vocab, 10 + r),
            args.steps,
            args.warmup,
        )
        bare.append(b)
        data.append(d)
        print(f"round {r}: bare {b:,.0f} tok/s, data path {d:,.0f} tok/s", flush=True)
    result = {
        "bare_tokens_per_second": statistics.median(bare),
        "data_path_tokens_per_second": statistics.median(data),
        "data_path_alone_tokens_per_second": alone,
        "overhead": 1 - statistics.median(data) / statistics.median(bare),
        "rounds": {"bare": bare, "data_path": data},
        "config": vars(args),
        "vocab_size": len(vocab),
        "load_average": os.getloadavg(),
    }
    print(f"bare loop (in-memory tensors): {result['bare_tokens_per_second']:,.0f} tok/s")
    print(f"full data path:                {result['data_path_tokens_per_second']:,.0f} tok/s")
    print(
        f"data path cost: {100 * result['overhead']:.1f}% "
        f"(data path alone, no training: {alone:,.0f} tok/s)"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
