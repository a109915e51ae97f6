"""`--url-blocklist FILE`: documents whose URL is on a blocklist are filtered (URL_BLOCKED).

The file has one entry a line; blank lines and `#` comments (whole lines, or after a space)
are skipped. An entry is
- a domain (`example.com`, `*.example.com`, `.example.com`): that host and every subdomain,
  never a host that merely ends the same way (`badexample.com`);
- a URL prefix (`https://example.com/ads/`, `example.com/ads/`): that host exactly (no
  subdomains) and every path that starts with the entry's path (case-sensitive, as paths are);
  the scheme is ignored, so http and https alike;
- a hosts-file line (`0.0.0.0 ads.example.com tracker.example.net`): each name is a domain.
Hosts are compared lower-cased, without a trailing dot, port or user info, and in their IDNA
(punycode) form, so `例え.jp` and `xn--r8jz45g.jp` are one host. A host whose last label is
numeric (an IPv4 address; no TLD is numeric) or an IPv6 address matches only an identical
entry: no suffix walk.

A lookup walks the host's suffixes through a set (`a.b.example.com`, `b.example.com`, ...): a
few hash probes per URL whatever the size of the list, where a regex alternation of 100,000
domains would be tried at every position. `benchmarks/bench_quality.py` measures both.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

URL_BLOCKED = "blocked_url"


def normalize_host(host: str) -> str:
    host = host.strip().rstrip(".").lower()
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:  # not a valid IDNA name: compare it as written
            pass
    return host


def _split(url: str) -> tuple[str, str]:
    """(normalized host, path with query) of a URL, with or without a scheme; ("", "") when
    it has no host or cannot be parsed."""
    if "://" not in url and not url.startswith("//"):
        url = "//" + url
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
    except ValueError:  # an unbalanced [ in the host, and the like
        return "", ""
    path = parts.path or "/"
    return normalize_host(host), path + ("?" + parts.query if parts.query else "")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class UrlBlocklist:
    """Domains (with subdomains) and per-host URL path prefixes; `match` names the entry."""

    def __init__(self, domains: Iterable[str] = (), prefixes: Iterable[str] = ()):
        self.domains = {normalize_host(d.lstrip("*").lstrip(".")) for d in domains}
        self.domains.discard("")
        by_host: dict[str, set[str]] = {}
        for entry in prefixes:
            host, path = _split(entry)
            if not host:
                raise ValueError(f"URL prefix without a host: {entry!r}")
            by_host.setdefault(host, set()).add(path)
        # str.startswith takes a tuple: one C call per URL for all of a host's prefixes.
        self.prefixes = {h: tuple(sorted(p)) for h, p in by_host.items()}

    @classmethod
    def from_lines(cls, lines: Iterable[str], source: str = "blocklist") -> UrlBlocklist:
        """Parse a blocklist file's lines; ValueError naming the line for a malformed one."""
        domains: list[str] = []
        prefixes: list[str] = []
        for number, raw in enumerate(lines, 1):
            line = raw.split(" #", 1)[0].split("\t#", 1)[0].strip()
            if not line or line.startswith("#"):
                continue
            fields = line.split()
            if len(fields) > 1 and _is_ip(fields[0]):
                fields = fields[1:]  # hosts-file format
            elif len(fields) > 1:
                raise ValueError(f"{source}:{number}: one entry a line, got {line!r}")
            for entry in fields:
                if "/" in entry:
                    prefixes.append(entry)
                elif "." in entry.strip(".*") or _is_ip(entry) or entry == "localhost":
                    domains.append(entry)
                else:
                    raise ValueError(f"{source}:{number}: not a domain or URL: {entry!r}")
        return cls(domains, prefixes)

    @classmethod
    def from_file(cls, path: str) -> UrlBlocklist:
        with open(path, encoding="utf-8") as handle:
            return cls.from_lines(handle, source=path)

    def __len__(self) -> int:
        return len(self.domains) + sum(len(p) for p in self.prefixes.values())

    def match(self, url: str | None) -> str | None:
        """The entry that blocks `url` (a domain, or host + path prefix), or None."""
        if not url:
            return None
        host, path = _split(url)
        if not host or len(host) > 253:  # no DNS name is longer; keeps the walk linear
            return None
        paths = self.prefixes.get(host)
        if paths and path.startswith(paths):
            return host + next(p for p in paths if path.startswith(p))
        if host in self.domains:
            return host
        if ":" in host or host.rsplit(".", 1)[-1].isdigit():
            return None  # an address (no TLD is numeric) has no parent domains
        dot = host.find(".")
        while dot >= 0:
            host = host[dot + 1 :]
            if host in self.domains:
                return host
            dot = host.find(".")
        return None
