"""The charset of an HTML payload, and its text: BOM, the bytes themselves, the declarations
(HTTP `Content-Type`, `<meta charset>` / `http-equiv`, an XML declaration), then sniffing.

A browser trusts the HTTP header over everything but a BOM. A crawl shows why a corpus
builder should not: servers default to `ISO-8859-1` or `UTF-8` for pages that are neither,
and authoring tools leave a stale `<meta>` behind after re-encoding. So where the bytes can
decide, they win:

1. a BOM names the encoding (WHATWG does the same);
2. ASCII-only bytes decode the same in every ASCII-compatible charset (unless they hold the
   escape sequences of ISO-2022-JP, a 7-bit encoding);
3. bytes that decode strictly as UTF-8 are UTF-8: legacy CJK or Latin text with non-ASCII
   bytes is practically never valid UTF-8, whatever a header or `<meta>` claims;
4. a declared multi-byte charset (HTTP first, then `<meta>`) that decodes strictly;
5. the sniffer (uchardet, through resiliparse: righter than charset-normalizer here and
   faster, docs/web.md) when it names a multi-byte charset that decodes strictly: it
   overrules a declared single-byte charset, which decodes anything and so proves nothing;
6. the legacy charset of the page's `<html lang>` (a browser's locale default: ko → cp949,
   ja → cp932 then EUC-JP, ...) when it decodes strictly;
7. a declared single-byte charset, then a sniffed one;
8. else windows-1252 with replacement characters, counted as `fallback_replace`.

Strict decodes are incremental with `final=False`, so a payload cut inside a multi-byte
character (a truncated record) still counts as valid; the cut tail is dropped.

Measured on the development crawl (docs/web.md): 3096/3096 HTML pages decoded to the labelled
text. Label names go through resiliparse's WHATWG table, then to the decoders WHATWG really
uses for them (`Shift_JIS` is Microsoft's cp932, `GBK` is GB18030, ...).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from resiliparse.parse.encoding import detect_encoding, map_encoding_to_html5

# WHATWG's decoder behind a label is the vendor superset of the charset the label names.
_WHATWG_DECODER = {"shift_jis": "cp932", "euc_kr": "cp949", "gbk": "gb18030", "big5": "big5hkscs"}
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Where declarations are looked for: the whole <head> in practice (LilyPond pages put a long
# licence comment first, so their <meta> starts after WHATWG's 1024-byte prescan window).
META_SCAN_BYTES = 64 << 10
SNIFF_BYTES = 64 << 10
_META = re.compile(rb"<meta\b[^>]*?charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:()-]+)", re.I)
_XML_DECL = re.compile(rb"^\s*<\?xml\b[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9_.:-]+)", re.I)

# Reasons, one counter each.
BOM, ASCII, UTF8, HTTP, META, SNIFFED, LANG_DEFAULT, FALLBACK = (
    "bom",
    "ascii",
    "utf8",
    "http",
    "meta",
    "sniffed",
    "lang_default",
    "fallback_replace",
)
# What a browser set to the page's language falls back to (WHATWG's locale defaults).
_LANG_DEFAULTS = {
    "ja": ("cp932", "euc_jp"),
    "ko": ("cp949",),
    "zh": ("gb18030",),
    "zh-cn": ("gb18030",),
    "zh-tw": ("big5hkscs",),
    "zh-hk": ("big5hkscs",),
    "ru": ("cp1251",),
    "uk": ("cp1251",),
    "th": ("cp874",),
}
_HTML_LANG = re.compile(rb"<html\b[^>]*?\blang\s*=\s*[\"']?([A-Za-z-]{2,12})", re.I)


@dataclass(frozen=True)
class Decoded:
    text: str
    charset: str  # the Python codec that decoded it
    reason: str  # which rule decided (above)
    declared: str | None = None  # what HTTP or <meta> said, when the bytes overruled it


def codec_for(label: str | None) -> str | None:
    """A charset label as written in a header or `<meta>` → the Python codec a WHATWG
    decoder amounts to, or None for a label nobody knows."""
    if not label:
        return None
    name = map_encoding_to_html5(label.strip().strip("\"'"), fallback_utf8=False)
    if name is None:
        return None
    name = _WHATWG_DECODER.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def meta_charset(payload: bytes) -> str | None:
    """The charset named by `<meta charset>`, `<meta http-equiv content=...charset=>` or an
    XML declaration, in the head of the page."""
    head = payload[:META_SCAN_BYTES]
    end = head.find(b"</head")  # a C scan: the regex then reads only the head
    head = head if end < 0 else head[:end]
    match = _META.search(head) or _XML_DECL.search(head)
    return match.group(1).decode("ascii") if match else None


def _single_byte(codec: str) -> bool:
    # A codec that maps (nearly) every byte on its own: a strict decode proves nothing.
    return codecs.lookup(codec).name in _SINGLE_BYTE or codec.startswith(("cp12", "iso8859"))


_SINGLE_BYTE = {
    "cp1252",
    "latin-1",
    "iso8859-1",
    "koi8-r",
    "koi8-u",
    "mac-roman",
    "cp874",
    "cp866",
    "tis-620",
    "cp437",
}


def strict_decode(payload: bytes, codec: str) -> str | None:
    """The text if `payload` is valid in `codec` (an incomplete final character allowed)."""
    try:
        decoder = codecs.getincrementaldecoder(codec)(errors="strict")
        return decoder.decode(payload, final=False)
    except (UnicodeDecodeError, LookupError):
        return None


def sniff(payload: bytes) -> str | None:
    """uchardet's guess (resiliparse), as a WHATWG decoder codec."""
    guess = detect_encoding(payload[:SNIFF_BYTES], max_len=SNIFF_BYTES)
    return codec_for(guess)


def html_lang(payload: bytes) -> str | None:
    """`<html lang>`, lower case (`zh-tw`), or None."""
    match = _HTML_LANG.search(payload[:META_SCAN_BYTES])
    return match.group(1).decode("ascii").lower() if match else None


def seven_bit_ascii(payload: bytes) -> bool:
    """Plain ASCII: the same text in every ASCII-compatible charset (ISO-2022 excluded)."""
    return payload.isascii() and b"\x1b" not in payload


def decode_html(payload: bytes, http_charset: str | None = None, sniffers=(sniff,)) -> Decoded:
    """The text of an HTML payload and the rule that chose its charset (see the module doc).
    `sniffers` (bytes → codec or None, tried in turn) is there for the benchmark."""
    if seven_bit_ascii(payload):
        return Decoded(payload.decode("ascii"), "ascii", ASCII)
    for bom, codec in _BOMS:
        if payload.startswith(bom):
            return Decoded(payload[len(bom) :].decode(codec, errors="replace"), codec, BOM)
    seven_bit = payload.isascii()
    declared = [(HTTP, codec_for(http_charset)), (META, codec_for(meta_charset(payload)))]
    named = next((c for _, c in declared if c), None)
    # 7-bit bytes with escape sequences are ISO-2022 (JP, KR, CN), which UTF-8 also accepts.
    text = None if seven_bit else strict_decode(payload, "utf-8")
    if text is not None:
        return Decoded(text, "utf-8", UTF8, None if named in (None, "utf-8") else named)
    for reason, codec in declared:
        if codec and codec != "utf-8" and not _single_byte(codec):
            text = strict_decode(payload, codec)
            if text is not None:
                return Decoded(text, codec, reason)
    guess, text = None, None
    for detector in sniffers:  # the next one only where a guess does not even decode
        guess = detector(payload)
        text = strict_decode(payload, guess) if guess else None
        if text is not None:
            break
    if text is not None and guess != "utf-8" and not _single_byte(guess):
        return Decoded(text, guess, SNIFFED, named)
    for codec in _LANG_DEFAULTS.get(html_lang(payload), ()):
        decoded = strict_decode(payload, codec)
        if decoded is not None:
            return Decoded(decoded, codec, LANG_DEFAULT, named)
    for reason, codec in declared:
        if codec and _single_byte(codec):
            return Decoded(payload.decode(codec, errors="replace"), codec, reason)
    if text is not None:
        return Decoded(text, guess, SNIFFED, named)
    if seven_bit:  # escape bytes, but no ISO-2022 codec accepts them
        return Decoded(payload.decode("ascii"), "ascii", ASCII, named)
    return Decoded(payload.decode("cp1252", errors="replace"), "cp1252", FALLBACK, named)


def text_codec(encoding: str, sample: bytes = b"") -> str | None:
    """The codec for `--encoding` on text and JSON Lines input: a label (`cp932`,
    `Shift_JIS`, `euc-jp`, ...) names it; `auto` decides from a sample of the file (its first
    blocks): UTF-8 if the sample is valid UTF-8 (or has a UTF-8 BOM), else uchardet's guess if
    the sample decodes with it, else None (the caller rejects the file's lines as undecodable).
    A whole-file sample, not each line: a short line is too little for a sniffer."""
    if encoding != "auto":
        codec = codec_for(encoding)
        if codec is None:
            raise ValueError(f"unknown --encoding {encoding!r}")
        return codec
    if sample.startswith(codecs.BOM_UTF8) or strict_decode(sample, "utf-8") is not None:
        return "utf-8"
    guess = sniff(sample)
    return guess if guess and strict_decode(sample, guess) is not None else None


def decode_text(raw: bytes, codec: str) -> str | None:
    """One line or record in `codec` (strict; a leading BOM dropped), None if it does not
    decode (the caller's `bad_encoding` dead letter)."""
    try:
        return raw.decode(codec).removeprefix("\ufeff")
    except UnicodeDecodeError:
        return None
