"""Generate text with a trained GRU checkpoint.

    python -m lm.generate --checkpoint RUN/checkpoint.pt --prompt "関数" [--strategy sample]
        [--temperature 0.8] [--top-k 40] [--top-p 0.95] [--max-new-tokens 200] [--seed 0]

The checkpoint carries the vocabulary and tokenizer, so no data directory is needed. `<unk>`
is printed as a visible placeholder (`--unk`); generation stops at `<eos>`.
"""

from __future__ import annotations

import argparse
import sys

import torch

from lm.checkpoint import load_model
from lm.data import Vocab
from lm.errors import LMError, exit_with
from lm.model import GRULM

__all__ = ["filter_logits", "generate", "load_model", "main"]  # load_model: lm.checkpoint's


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Keep the `top_k` largest logits and the smallest set whose probability reaches `top_p`."""
    logits = logits.clone()
    if top_k and top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits[logits < kth] = float("-inf")
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        cumulative = torch.softmax(sorted_logits, -1).cumsum(-1)
        drop = cumulative - torch.softmax(sorted_logits, -1) >= top_p  # keep the first to reach p
        logits[order[drop]] = float("-inf")
    return logits


@torch.no_grad()
def generate(
    model: GRULM,
    vocab: Vocab,
    prompt: str = "",
    max_new_tokens: int = 200,
    strategy: str = "sample",
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int = 0,
) -> list[int]:
    """Ids that continue `<bos> prompt`; `strategy` is "greedy" or "sample"."""
    device = next(model.parameters()).device
    generator = torch.Generator(device="cpu").manual_seed(seed)
    ids = [vocab.bos, *vocab.encode(prompt).tolist()]
    features, h = model(torch.tensor([ids], device=device))
    out: list[int] = []
    for _ in range(max_new_tokens):
        logits = model.log_probs(features[:, -1]).float().cpu()[0]
        logits[vocab.bos] = float("-inf")  # never predicted inside a document
        if strategy == "greedy":
            nxt = int(torch.argmax(logits))
        else:
            logits = filter_logits(logits / max(temperature, 1e-6), top_k, top_p)
            nxt = int(torch.multinomial(torch.softmax(logits, -1), 1, generator=generator))
        if nxt == vocab.eos:
            break
        out.append(nxt)
        features, h = model(torch.tensor([[nxt]], device=device), h)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m lm.generate",
        description="Generate text from a prompt with a trained GRU.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--checkpoint", required=True, help="RUN/checkpoint.pt of lm.train")
    ap.add_argument("--prompt", default="", help="text to continue")
    ap.add_argument("--max-new-tokens", type=int, default=200)
    ap.add_argument("--strategy", default="sample", choices=("greedy", "sample"))
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--top-k", type=int, default=0, help="0: no top-k filter")
    ap.add_argument("--top-p", type=float, default=1.0, help="1.0: no nucleus filter")
    ap.add_argument("--num-samples", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--unk", default="\ufffd", help="placeholder printed for <unk>")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    try:
        model, vocab = load_model(args.checkpoint, args.device)
    except LMError as e:
        return exit_with(e)
    for i in range(args.num_samples):
        ids = generate(
            model,
            vocab,
            args.prompt,
            args.max_new_tokens,
            args.strategy,
            args.temperature,
            args.top_k,
            args.top_p,
            args.seed + i,
        )
        prompt = vocab.decode(vocab.encode(args.prompt), args.unk)
        print(prompt + vocab.decode(ids, args.unk))
        if i + 1 < args.num_samples:
            print("-" * 40)
    return 0


if __name__ == "__main__":
    sys.exit(main())
