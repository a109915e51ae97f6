"""Text as an array of Unicode code points: one C-speed encode, no Python loop per character.

UTF-32 has one fixed-width unit per code point, so the encoded bytes viewed as uint32 are the
code points themselves. Filters, n-gram counting, shingle hashing and `lm`'s character
vocabulary all start from this array. `surrogatepass` keeps a lone surrogate (never in a
document, which the reader rejects, but possible in a test's random text) as its own value.
"""

from __future__ import annotations

import numpy as np


def code_points(text: str) -> np.ndarray:
    """The code points of `text` as a uint32 array (a view of the encoded bytes)."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
