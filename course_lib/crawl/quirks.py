"""What makes real pages hard to read without losing their content: broken HTML, unusual encodings and
typographic characters.

    break_html    missing end tags, upper-case tags, unquoted attributes, a truncated tail
    encode_page   windows-1252 (declared or not), UTF-8 with a byte-order mark, UTF-16
    typographic   curly apostrophes and quotes, so that decoding with the wrong charset shows
"""

from __future__ import annotations

import random
import re


def break_html(rng: random.Random, page: str) -> str:
    """Real-world damage that leaves the content readable: missing end tags, upper case, a truncated tail."""
    for tag in ["</p>", "</li>"]:  # end tags that HTML lets you leave out
        if rng.random() < 0.5:
            page = page.replace(tag, "", rng.randint(1, 3))
    if rng.random() < 0.3:
        page = page.replace("<p>", "<P>").replace("</p>", "</P>")
    if rng.random() < 0.3:
        page = re.sub(r'(class|id)="([\w-]+)"', r"\1=\2", page)  # unquoted attributes
    if rng.random() < 0.5:  # cut the page off somewhere after the content, maybe inside a tag
        start = max(page.rfind("</main>"), page.rfind('<div class="sidebar"'), page.rfind("<aside"))
        if start > 0:
            page = page[: rng.randint(start + 1, len(page))]
    return page


ENCODINGS = ["cp1252", "latin-1 undeclared", "utf-8 bom", "utf-16"]


def encode_page(rng: random.Random, page: str, odd: bool) -> tuple[bytes, str]:
    """(page bytes, "" or the name of the odd encoding used): UTF-8 unless `odd`, else one of ENCODINGS."""
    if not odd:
        return page.encode("utf-8"), ""
    choice = rng.choice(ENCODINGS)
    try:
        if choice == "cp1252":
            return page.replace('charset="utf-8"', 'charset="windows-1252"').encode("cp1252"), choice
        if choice == "latin-1 undeclared":
            return page.replace('<meta charset="utf-8">', "").encode("cp1252"), choice
    except UnicodeEncodeError:  # Cyrillic or Greek cannot be written in cp1252: fall back to a BOM
        choice = "utf-8 bom"
    if choice == "utf-8 bom":
        return b"\xef\xbb\xbf" + page.encode("utf-8"), choice
    return page.encode("utf-16"), choice


def typographic(text: str) -> str:
    """Curly apostrophes and quotes, as many sites serve them (so a wrong decoding shows)."""
    text = text.replace("'", "\u2019")
    out, opening = [], True
    for ch in text:
        if ch == '"':
            out.append("\u201c" if opening else "\u201d")
            opening = not opening
        else:
            out.append(ch)
    return "".join(out)
