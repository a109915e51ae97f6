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
    """`--x` / `--no-x` for a boolean dest. Register it with the positive option string only;
    run argv through `legacy_bool_values` first so the old `--x VALUE` form still parses."""

    def __init__(self, option_strings, dest, default=False, help=None, **kwargs):
        strings = []
        for option in option_strings:
            strings.append(option)
            if option.startswith("--"):
                strings.append("--no-" + option[2:])
        state = "on" if default else "off"
        super().__init__(
            strings,
            dest,
            nargs=0,
            default=default,
            help=f"{help + ' ' if help else ''}(default {state})",
        )

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, not option_string.startswith("--no-"))

    def format_usage(self) -> str:
        return " | ".join(self.option_strings)


def legacy_bool_values(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """argv with the old value forms of boolean flags (`--x true`, `--x=off`) rewritten to
    `--x` / `--no-x`, each with a deprecation warning on stderr."""
    flags = {s for a in parser._actions if isinstance(a, BoolFlag) for s in a.option_strings}
    out, i = [], 0
    while i < len(argv):
        arg = argv[i]
        name, eq, inline = arg.partition("=")
        value = inline if eq else (argv[i + 1] if i + 1 < len(argv) else None)
        if name in flags and value is not None and parse_bool(value) is not None:
            on = parse_bool(value) != name.startswith("--no-")
            positive = name.replace("--no-", "--", 1)
            new = positive if on else "--no-" + positive[2:]
            print(f"warning: {name} {value} is deprecated; use {new}", file=sys.stderr)
            out.append(new)
            i += 1 if eq else 2
            continue
        out.append(arg)
        i += 1
    return out


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
    group.add_argument(
        old,
        dest=action.dest,
        action=_RenamedFlag,
        new_name=new,
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
        **alias,
    )
