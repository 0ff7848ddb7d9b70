"""Putting a record together: which page `index` is, its content, the page around it, its labels.

A page is drawn in three steps, each from its own seeded `random.Random`:
  1. what it is (`page_kind`): a site type and a defect (or none), with the shares in `labels`;
  2. its main content as blocks: fresh (a good page or a content defect) or copied from an earlier good
     page (exact and near duplicates);
  3. the page around it (`chrome`), then its quirks (`quirks`): broken HTML, an unusual encoding.

Determinism: every random choice comes from `random.Random(f"crawl/{seed}/{index}/{purpose}")`. Seeding
with a string hashes it with SHA-512, so the same seed gives the same crawl on every platform and Python
version, no global random state is touched, and any page can be drawn on its own (`crawl_record`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from course_lib.crawl.blocks import Block, blocks_to_html, blocks_to_text
from course_lib.crawl.chrome import SITES, wrap_page
from course_lib.crawl.code_pages import code_blocks
from course_lib.crawl.defect_pages import (
    BOILERPLATE_MAIN,
    gibberish_blocks,
    low_quality_blocks,
    near_duplicate,
    not_text_payload,
    spam_blocks,
    toxic_blocks,
)
from course_lib.crawl.encyclopedia_pages import encyclopedia_blocks
from course_lib.crawl.foreign_pages import foreign_blocks
from course_lib.crawl.forum_pages import MODERATOR_NOTE, forum_blocks
from course_lib.crawl.labels import DEFECT_SHARES, DOMAINS, CrawlRecord
from course_lib.crawl.pii import add_pii
from course_lib.crawl.quirks import break_html, encode_page, typographic
from course_lib.crawl.story_pages import story_blocks
from course_lib.data_cleaning.toxicity import BLOCKLIST

PII_SHARE = 0.15  # share of good encyclopedia/forum/code pages that contain PII
BROKEN_HTML_SHARE = 0.10
ODD_ENCODING_SHARE = 0.08
DUP_WINDOW = 400  # a duplicate copies a page at most this many records earlier


def _rng(seed: int, index: int, purpose: str) -> random.Random:
    """The random stream of page `index` for one purpose ("kind", "content", "page")."""
    return random.Random(f"crawl/{seed}/{index}/{purpose}")


def _pick_share(rng: random.Random, shares: dict[str, float], rest: str | None = None) -> str:
    """A key of `shares` drawn with its probability; `rest` takes whatever probability is left."""
    u, total = rng.random(), 0.0
    for key, share in shares.items():
        total += share
        if u < total:
            return key
    return rest if rest is not None else key


# ----------------------------------------------------------------------------------------------------
# What a page is, and where it lives.

def page_kind(seed: int, index: int) -> tuple[str, str]:
    """(domain, defect) of page `index`: cheap, so duplicates can look back for a good page to copy."""
    rng = _rng(seed, index, "kind")
    domain = _pick_share(rng, DOMAINS)
    defect = _pick_share(rng, DEFECT_SHARES, rest="")
    if defect in ("exact_dup", "near_dup") and index == 0:
        defect = ""
    return domain, defect


def _original_for(seed: int, index: int, rng: random.Random) -> int | None:
    """An earlier good page for a duplicate to copy, or None if the window holds none."""
    for _ in range(20):
        j = rng.randrange(max(0, index - DUP_WINDOW), index)
        if page_kind(seed, j)[1] == "":
            return j
    return None


def _url(rng: random.Random, domain: str, index: int, title: str) -> tuple[str, str]:
    """(site, URL) of a page: a site of its domain, a path made from its title."""
    site = rng.choice(SITES[domain])
    slug = "-".join("".join(ch for ch in w.lower() if ch.isalnum()) for w in title.split()[:6]).strip("-") or "page"
    path = {"stories": "tales", "encyclopedia": "wiki", "forum": "t", "code": "snippets"}[domain]
    return site, f"https://www.{site}.example/{path}/{slug}-{index}"


# ----------------------------------------------------------------------------------------------------
# Its main content.

def content_blocks(domain: str, seed: int, index: int) -> list[Block]:
    """The main content of page `index` (the same for any page that copies it)."""
    if domain == "stories":
        return story_blocks(index, seed)
    rng = _rng(seed, index, "content")
    return {"encyclopedia": encyclopedia_blocks, "forum": forum_blocks, "code": code_blocks}[domain](rng)


@dataclass
class _Content:
    """A page's main content before it is dressed in HTML."""

    domain: str
    blocks: list[Block]
    detail: str = ""
    lang: str = "en"
    pii: tuple[tuple[str, str], ...] = ()
    traps: tuple[str, ...] = ()


def _fresh_content(rng: random.Random, seed: int, index: int, domain: str, defect: str) -> _Content:
    """New content for a good page or a page with one of the content defects."""
    blocks = content_blocks(domain, seed, index)
    if defect == "":
        content = _Content(domain, blocks)
        if domain != "stories" and rng.random() < PII_SHARE:
            content.blocks, content.pii = add_pii(rng, blocks)
        if domain == "forum" and rng.random() < 0.05:  # a trap for the toxicity filter: a quoted word
            content.blocks = content.blocks + [("p", MODERATOR_NOTE.format(word=rng.choice(BLOCKLIST)))]
            content.traps = ("blocked word quoted",)
        if any("ISBN" in t or "Tested with build" in t for _, t in content.blocks):
            content.traps += ("number looks like pii",)
        return content
    if defect == "spam":
        return _Content(domain, *spam_blocks(rng))
    if defect == "gibberish":
        return _Content(domain, *gibberish_blocks(rng))
    if defect == "foreign":
        blocks, lang = foreign_blocks(rng)
        return _Content(domain, blocks, lang, lang)
    if defect == "toxic":  # toxic pages are forum threads
        return _Content("forum", *toxic_blocks(rng, forum_blocks(rng)))
    if defect == "low_quality":
        return _Content(domain, *low_quality_blocks(rng, blocks))
    if defect == "boilerplate":
        main = rng.choice(BOILERPLATE_MAIN)
        return _Content(domain, [("p", main)] if main else [], main or "empty")
    raise ValueError(f"no content for defect {defect!r}")


def _blocks_of(record: CrawlRecord) -> list[Block]:
    """The content blocks of a good page, read back from its true text (headings become paragraphs)."""
    return [("p", line) for line in record.text.split("\n")]


def _copied_content(rng: random.Random, original: CrawlRecord, defect: str) -> _Content:
    """The content of an earlier good page, exactly (exact_dup) or with small edits (near_dup)."""
    blocks = _blocks_of(original)
    if defect == "exact_dup":
        return _Content(original.domain, blocks, "copy", original.lang, original.pii, original.traps)
    blocks = near_duplicate(rng, blocks)
    pii = tuple(p for p in original.pii if p[1] in blocks_to_text(blocks))
    return _Content(original.domain, blocks, "edited", original.lang, pii, original.traps)


# ----------------------------------------------------------------------------------------------------
# The record, and the crawl.

def crawl_record(index: int, seed: int = 0) -> CrawlRecord:
    """Page `index` of the crawl with this seed (any page can be drawn on its own)."""
    if index < 0:
        raise ValueError(f"page index must be >= 0, got {index}")
    domain, defect = page_kind(seed, index)
    rng = _rng(seed, index, "page")
    dup_of = _original_for(seed, index, rng) if defect in ("exact_dup", "near_dup") else None
    if defect in ("exact_dup", "near_dup") and dup_of is None:
        defect = ""

    if defect == "not_text":
        payload, detail = not_text_payload(rng)
        site, url = _url(rng, domain, index, "file")
        return CrawlRecord(index, url, payload, domain, defect, detail, lang="")
    if dup_of is not None:
        original = crawl_record(dup_of, seed)  # originals are good pages, so this recursion is one level deep
        if defect == "exact_dup" and rng.random() < 0.5:  # a mirror: the very same bytes at another URL
            site, url = _url(rng, original.domain, index, original.text.split("\n")[0])
            return CrawlRecord(index, url, original.html, original.domain, defect, "mirror", original.text,
                               original.lang, original.pii, dup_of, original.quirks, original.traps)
        content = _copied_content(rng, original, defect)
    else:
        content = _fresh_content(rng, seed, index, domain, defect)

    blocks = content.blocks
    if rng.random() < 0.3 and content.lang == "en" and dup_of is None:  # copies keep the original's characters
        blocks = [(tag, text if tag == "pre" else typographic(text)) for tag, text in blocks]
    title = blocks[0][1] if blocks else "Untitled"
    site, url = _url(rng, content.domain, index, title)
    page = wrap_page(rng, site, title, blocks_to_html(blocks), content.lang)
    quirks = []
    if rng.random() < BROKEN_HTML_SHARE:
        page = break_html(rng, page)
        quirks.append("broken_html")
    raw, encoding = encode_page(rng, page, rng.random() < ODD_ENCODING_SHARE)
    if encoding:
        quirks.append(f"encoding:{encoding}")
    return CrawlRecord(index, url, raw, content.domain, defect, content.detail, blocks_to_text(blocks), content.lang,
                       content.pii, dup_of, tuple(quirks), content.traps)


def crawl(n: int, seed: int = 0, start: int = 0) -> list[CrawlRecord]:
    """Pages start .. start+n-1 of the crawl with this seed."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return [crawl_record(i, seed) for i in range(start, start + n)]
