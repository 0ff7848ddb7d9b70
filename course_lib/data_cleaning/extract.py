"""Stage 1, extraction: the raw bytes of a crawled page -> its main text.

Common Crawl stores pages as bytes: the charset may be declared, wrong or missing, and a "page" may be an
image, an empty response, a huge file or HTML cut off inside a tag. Before any filter can read a page we
need its main text, without the navigation, cookie banners, ads and footers around it: a filter that
sees the chrome judges the site, not the page.

    decode_html     bytes -> str: byte-order mark, then the declared charset, then UTF-8, then windows-1252
    looks_binary    most of the decoded "text" is control characters: a PNG, a PDF, a gzip stream...
    html_to_text    the visible, non-boilerplate text, one line per block element (tolerates broken HTML)
    extract_text    all three, with a reason instead of an exception for bad input:
                    empty, too_large, binary, no_main_text
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

# ----------------------------------------------------------------------------------------------------
# Bytes to text. Common Crawl's WARC records are bytes; the charset may be declared, wrong or missing.

MAX_PAGE_BYTES = 1 << 20  # Common Crawl truncates records at 1 MiB; we refuse bigger pages outright
_CHARSET_RE = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.IGNORECASE)
# Browsers read latin-1 as windows-1252 (WHATWG Encoding Standard); so do we.
_ENCODING_ALIASES = {"latin-1": "cp1252", "latin1": "cp1252", "iso-8859-1": "cp1252", "iso8859-1": "cp1252",
                     "us-ascii": "cp1252", "ascii": "cp1252"}


def decode_html(raw: bytes) -> tuple[str, str]:
    """Decode page bytes: a byte-order mark wins, then the declared charset, then UTF-8, then windows-1252.

    Returns (text, name of the encoding used). Never raises: the last resort is latin-1, which maps every
    byte to some character (binary junk then shows up as control characters; see `looks_binary`).
    """
    if raw.startswith(codecs.BOM_UTF8):
        return raw[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16", errors="replace"), "utf-16"
    candidates = []
    declared = _CHARSET_RE.search(raw[:4096])
    if declared:
        name = declared.group(1).decode("ascii", errors="replace").lower()
        name = _ENCODING_ALIASES.get(name, name)
        try:
            candidates.append(codecs.lookup(name).name)
        except LookupError:  # an unknown charset name: ignore the declaration
            pass
    for encoding in candidates + ["utf-8", "cp1252"]:
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1"), "latin-1"


_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ufffd]")  # controls (not tab/newline/cr/ff), C1, U+FFFD


def looks_binary(text: str, sample: int = 4096) -> bool:
    """True if the decoded text is mostly not text: a NUL, or over 5% control or replacement characters."""
    head = text[:sample]
    return "\x00" in head or len(_NOT_TEXT.findall(head)) > 0.05 * len(head)


# ----------------------------------------------------------------------------------------------------
# HTML to main text. We keep the text of the page body, one line per block element, and skip
# anything that is markup-only (scripts, styles) or boilerplate by tag or by class/id name.

SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "title", "nav", "header", "footer", "aside",
                       "form", "button", "select", "iframe", "svg", "canvas", "object"})
BLOCK_TAGS = frozenset({"p", "div", "br", "hr", "li", "ul", "ol", "dl", "dt", "dd", "h1", "h2", "h3", "h4", "h5",
                        "h6", "pre", "blockquote", "article", "section", "main", "table", "tr", "td", "th",
                        "figure", "figcaption", "body", "html"})
VOID_TAGS = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
                       "source", "track", "wbr"})
BOILERPLATE_HINTS = frozenset({"nav", "navbar", "menu", "header", "footer", "cookie", "cookies", "consent",
                               "banner", "ad", "ads", "advert", "advertisement", "sponsor", "sponsored", "promo",
                               "sidebar", "social", "share", "newsletter", "subscribe", "related", "breadcrumb",
                               "breadcrumbs", "byline", "meta", "comments", "widget", "popup", "modal"})
_HINT_SPLIT = re.compile(r"[\s_\-]+")
_WHITESPACE = re.compile(r"\s+")


def is_boilerplate(tag: str, attrs: list[tuple[str, str | None]]) -> bool:
    """A tag in SKIP_TAGS, or a class/id with a token (split on whitespace, '-', '_') in BOILERPLATE_HINTS."""
    if tag in SKIP_TAGS:
        return True
    for name, value in attrs:
        if name in ("class", "id") and value:
            if any(token in BOILERPLATE_HINTS for token in _HINT_SPLIT.split(value.lower())):
                return True
    return False


class MainTextParser(HTMLParser):
    """Collects the visible, non-boilerplate text of a page.

    We keep a stack of open elements so that an end tag closes the most recent open element with its
    name (and whatever was opened after it, as browsers do with unclosed <p> or <li>). An end tag that
    matches nothing is ignored. Text is skipped while any open element is boilerplate.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[tuple[str, bool]] = []  # (tag, is boilerplate)
        self.skipping = 0  # how many open elements are boilerplate
        self.in_pre = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in BLOCK_TAGS:
            self.parts.append("\n")
        if tag in VOID_TAGS:
            return
        boilerplate = is_boilerplate(tag, attrs)
        self.open.append((tag, boilerplate))
        self.skipping += boilerplate
        self.in_pre += tag == "pre"

    def handle_endtag(self, tag: str) -> None:
        if tag in BLOCK_TAGS:
            self.parts.append("\n")
        if all(open_tag != tag for open_tag, _ in self.open):
            return
        while self.open:
            open_tag, boilerplate = self.open.pop()
            self.skipping -= boilerplate
            self.in_pre -= open_tag == "pre"
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        self.parts.append(data if self.in_pre else _WHITESPACE.sub(" ", data))

    def text(self) -> str:
        """What was collected: one line per block element, whitespace collapsed, no empty lines."""
        lines = ("".join(self.parts)).split("\n")
        return "\n".join(line for line in (" ".join(raw.split()) for raw in lines) if line)


def html_to_text(page: str) -> str:
    """The main text of an HTML page: one line per block element, whitespace collapsed, no empty lines.

    Skips script/style and boilerplate (SKIP_TAGS, or a class/id token in BOILERPLATE_HINTS). Text in
    <pre> keeps its line breaks; elsewhere any whitespace run is one space. Tolerates broken HTML.
    """
    parser = MainTextParser()
    try:
        parser.feed(page)
        parser.close()
    except Exception:  # html.parser is forgiving, but keep what we have if some markup still trips it
        pass
    return parser.text()


# ----------------------------------------------------------------------------------------------------
# The stage: all of the above, with a reason instead of an exception for a page that has no text.

@dataclass
class Extracted:
    """What `extract_text` made of a page: its main text, the encoding used, and why it was rejected."""

    text: str
    encoding: str = ""
    reasons: list[str] = field(default_factory=list)


def extract_text(raw: bytes | str, max_bytes: int = MAX_PAGE_BYTES) -> Extracted:
    """Stage 1: page bytes (or an already decoded string) to main text. Reasons: empty, too_large,
    binary, no_main_text."""
    if isinstance(raw, str):
        page, encoding = raw, "str"
        size = len(raw.encode("utf-8", errors="replace"))
    elif isinstance(raw, (bytes, bytearray, memoryview)):
        raw = bytes(raw)
        size = len(raw)
        page, encoding = ("", "") if size > max_bytes else decode_html(raw)
    else:
        raise TypeError(f"extract_text needs bytes or str, got {type(raw).__name__}")
    if size == 0:
        return Extracted("", encoding, ["empty"])
    if size > max_bytes:
        return Extracted("", encoding, ["too_large"])
    if looks_binary(page):
        return Extracted("", encoding, ["binary"])
    if page.rfind("<") > page.rfind(">"):  # a page cut off inside a tag: drop the half tag, as browsers do
        page = page[: page.rfind("<")]
    text = html_to_text(page)
    return Extracted(text, encoding, [] if text.strip() else ["no_main_text"])
