"""Bytes that cross a shuffle: zstd-compressed, with their size in front (Arrow's
decompression needs it). Text is most of what a shuffle moves, and a cluster's shuffle moves
and bills it by the byte; zstd gives 3-4x on the Japanese corpora at ~0.4 GB/s."""

from __future__ import annotations

import pyarrow as pa

_SIZE_BYTES = 8


def pack(data: bytes) -> bytes:
    return len(data).to_bytes(_SIZE_BYTES, "little") + pa.compress(data, codec="zstd", asbytes=True)


def unpack(packed: bytes) -> bytes:
    size = int.from_bytes(packed[:_SIZE_BYTES], "little")
    return pa.decompress(packed[_SIZE_BYTES:], size, codec="zstd", asbytes=True)
