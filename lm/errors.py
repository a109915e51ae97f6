"""The errors of `lm`, and the one place that turns them into an exit status.

Library code raises these (never `SystemExit`); each command's `main()` catches `LMError` and
calls `exit_with`, which prints one line `error: ...` on stderr and returns 2. Every error is
a `ValueError`, so callers that caught `ValueError` before keep working.
"""

from __future__ import annotations

import sys


class LMError(ValueError):
    """Anything `lm` refuses to work with: bad options, data, checkpoints or mixtures."""


class OptionError(LMError):
    """A command-line option, or a combination of them, that cannot be used."""


class DataDirError(LMError):
    """The data directory is not a complete pipeline output this package can read."""


class CheckpointError(LMError):
    """A checkpoint file that is missing, truncated, corrupted or not from lm.train."""


class MixtureError(LMError):
    """A mixture specification that cannot be used."""


def exit_with(error: LMError) -> int:
    """Print `error` as one line on stderr; the exit status of a refused command (2)."""
    message = " ".join(str(error).split("\n"))
    print(f"error: {message}", file=sys.stderr)
    return 2
