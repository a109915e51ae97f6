"""GRU language model: embedding -> GRU (layers, width, dropout) -> output head.

The head is a plain linear softmax or, for large vocabularies, an adaptive softmax
(`nn.AdaptiveLogSoftmaxWithLoss`, Grave et al. 2017): ids are sorted by train frequency in
`vocab.json`, so the frequent head cluster is small and rare tokens live in cheaper tail
clusters. Both give exact, normalized log-probabilities over the whole vocabulary, computed in
float32 even inside `torch.autocast` (a softmax over thousands of tokens in bf16 loses the
small probabilities), while the embedding and the GRU run in the autocast precision.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from lm.data import IGNORE_INDEX


@dataclass
class GRUConfig:
    vocab_size: int
    emb_dim: int = 128
    hidden: int = 512
    layers: int = 1
    dropout: float = 0.0
    head: str = "auto"  # "full", "adaptive", or "auto" (adaptive when vocab_size > 1024)
    cutoffs: list[int] = field(default_factory=list)
    div_value: float = 4.0

    def resolved(self) -> GRUConfig:
        cfg = GRUConfig(**asdict(self))
        if cfg.head == "auto":
            cfg.head = "adaptive" if cfg.vocab_size > 1024 else "full"
        if cfg.head == "adaptive" and not cfg.cutoffs:
            cfg.cutoffs = [c for c in (256, 2048) if c < cfg.vocab_size - 1]
        return cfg


class GRULM(nn.Module):
    def __init__(self, config: GRUConfig):
        super().__init__()
        self.config = cfg = config.resolved()
        self.embed = nn.Embedding(cfg.vocab_size, cfg.emb_dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.gru = nn.GRU(
            cfg.emb_dim,
            cfg.hidden,
            cfg.layers,
            batch_first=True,
            dropout=cfg.dropout if cfg.layers > 1 else 0.0,
        )
        if cfg.head == "adaptive":
            self.head = nn.AdaptiveLogSoftmaxWithLoss(
                cfg.hidden, cfg.vocab_size, cfg.cutoffs, div_value=cfg.div_value
            )
        elif cfg.head == "full":
            self.head = nn.Linear(cfg.hidden, cfg.vocab_size)
        else:
            raise ValueError(f"unknown head {cfg.head!r}")

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None):
        """Features (B, T, hidden) for ids `x` (B, T), and the final hidden state."""
        out, h = self.gru(self.drop(self.embed(x)), h)
        return self.drop(out), h

    def target_log_probs(self, features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """log p(target) for features (N, hidden) and targets (N,), in float32."""
        with torch.autocast(features.device.type, enabled=False):
            features = features.float()
            if self.config.head == "adaptive":
                return self.head(features, targets).output
            return torch.log_softmax(self.head(features), -1).gather(1, targets[:, None])[:, 0]

    def log_probs(self, features: torch.Tensor) -> torch.Tensor:
        """log p(w) for every w: (N, vocab_size), in float32."""
        with torch.autocast(features.device.type, enabled=False):
            features = features.float()
            if self.config.head == "adaptive":
                return self.head.log_prob(features)
            return torch.log_softmax(self.head(features), -1)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The training objective for ids x and targets y (B, T): mean NLL over the targets
        that are not IGNORE_INDEX, and their number (a 0-dim tensor: reading it is left to the
        caller, so that no device sync stalls the step before the backward pass)."""
        loss, n, _ = self.loss_with_state(x, y, None)
        return loss, n

    def loss_with_state(self, x: torch.Tensor, y: torch.Tensor, h: torch.Tensor | None):
        """`loss` from the hidden state `h` (None: zeros); also the final hidden state (truncated
        backpropagation through time: the caller detaches it and passes it to the next batch
        of the same lanes)."""
        features, h = self(x, h)
        keep = y.reshape(-1) != IGNORE_INDEX
        logp = self.target_log_probs(
            features.reshape(-1, features.shape[-1])[keep], y.reshape(-1)[keep]
        )
        return -logp.mean(), keep.sum(), h
