"""The flags of the opt-in text steps after the default filters (quality presets, PII, URL
blocklist), and the `QualityConfig` they make."""

from __future__ import annotations

import dataclasses

from beam_jobs.text.pii import PII_KINDS, PII_MODES, PiiConfig
from beam_jobs.text.presets import PRESET_NAMES, get_preset


@dataclasses.dataclass(frozen=True)
class QualityConfig:
    preset: str = "none"
    pii: PiiConfig = PiiConfig()
    url_blocklist: str | None = None  # a file of domains and URL prefixes (any filesystem)

    def settings(self) -> dict:
        return {
            "preset": self.preset,
            "pii": {"mode": self.pii.mode, "kinds": list(self.pii.kinds)},
            "url_blocklist": self.url_blocklist,
        }


def add_quality_args(parser) -> None:
    g = parser.add_argument_group("quality presets, PII and URLs (opt-in; docs/quality.md)")
    g.add_argument(
        "--quality-preset",
        default="none",
        choices=PRESET_NAMES,
        help="rules after the default filters: swallow (Swallow corpus v1) or "
        "hojichar (HojiChar's Japanese filters); made for web text",
    )
    g.add_argument(
        "--pii",
        default="off",
        choices=PII_MODES,
        help="e-mail, phone, IP, credit-card and My Number spans: mask them with "
        "typed placeholders, drop their documents, or leave them",
    )
    g.add_argument(
        "--pii-kinds",
        default=",".join(PII_KINDS),
        help=f"comma-separated kinds for --pii ({', '.join(PII_KINDS)})",
    )
    g.add_argument(
        "--url-blocklist",
        default=None,
        metavar="FILE",
        help="web pages whose URL is on a listed domain (subdomains included) or "
        "under a listed URL prefix are filtered (blocked_url)",
    )


def quality_config(opts) -> QualityConfig:
    """The config of parsed flags; ValueError (one line) for a value that cannot work."""
    get_preset(opts.quality_preset)
    kinds = tuple(k.strip() for k in opts.pii_kinds.split(",") if k.strip())
    return QualityConfig(opts.quality_preset, PiiConfig(opts.pii, kinds), opts.url_blocklist)
