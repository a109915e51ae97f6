"""One style for boolean command-line flags: `--x` turns it on, `--no-x` off.

The value forms of earlier versions (`--x true`, `--x off`) still parse, with a deprecation
warning, so old command lines keep working for a while.
"""

from __future__ import annotations

import argparse
import sys

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def parse_bool(text: str) -> bool | None:
    """True or False for the usual words (case-insensitive), None for anything else."""
    value = str(text).strip().lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    return None


class BoolFlag(argparse.Action):
    """`--x` / `--no-x` for a boolean dest; the old `--x VALUE` form is accepted with a
    warning. Register it with the positive option string only."""

    def __init__(self, option_strings, dest, default=False, help=None, **kwargs):
        strings = []
        for option in option_strings:
            strings.append(option)
            if option.startswith("--"):
                strings.append("--no-" + option[2:])
        state = "on" if default else "off"
        super().__init__(strings, dest, nargs="?", default=default, metavar="",
                         help=f"{help + ' ' if help else ''}(default {state})")

    def __call__(self, parser, namespace, values, option_string=None):
        negative = option_string.startswith("--no-")
        if values is None:
            setattr(namespace, self.dest, not negative)
            return
        value = parse_bool(values)
        if value is None:
            parser.error(f"{option_string} takes no value (got {values!r})")
        positive = option_string.replace("--no-", "--", 1)
        print(f"warning: {option_string} {values} is deprecated; use {positive} or "
              f"--no-{positive[2:]}", file=sys.stderr)
        setattr(namespace, self.dest, value != negative)


class _RenamedFlag(argparse.Action):
    """An old name of a renamed flag: stores into the new flag's dest, with a warning."""

    def __init__(self, option_strings, dest, new_name="", **kwargs):
        self.new_name = new_name
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"warning: {option_string} is deprecated; use {self.new_name}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_renamed(group, new: str, old: str, **kwargs) -> None:
    """Register flag `new` and its former name `old` (hidden from --help, still accepted)."""
    action = group.add_argument(new, **kwargs)
    alias = {k: v for k, v in kwargs.items() if k in ("type", "choices", "metavar")}
    group.add_argument(old, dest=action.dest, action=_RenamedFlag, new_name=new,
                       default=argparse.SUPPRESS, help=argparse.SUPPRESS, **alias)
