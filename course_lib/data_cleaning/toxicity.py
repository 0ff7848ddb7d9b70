"""Stage 6, toxicity by blocklist: drop a page that uses a blocked word.

Real lists (C4 used the "List of Dirty, Naughty, Obscene, and Otherwise Bad Words") hold a few hundred
words; the course's BLOCKLIST holds made-up ones. The list lives here, with the filter that owns it: the
synthetic crawl (`course_lib.crawl`) imports it to write its toxic pages, so the test data follows the
filter and never the other way round. Matching is on whole lowercased words, so a town called
"Zorbflaxton" is not blocked (the "Scunthorpe problem" of substring matching).
"""

from __future__ import annotations

import re

# Made-up placeholder words standing in for a real blocklist (they mean nothing in any language).
BLOCKLIST = ("zorbflax", "blentwit", "skrumbo", "vexnard", "quibbort", "drazzlewomp", "flonkus", "mubwert")

_WORD_RE = re.compile(r"\w+")  # whole words: a blocked word inside a longer one does not count


def blocklist_hits(text: str, blocklist: tuple[str, ...] = BLOCKLIST) -> int:
    """How many words of the text (lowercased, whole words only) are on the blocklist."""
    blocked = set(blocklist)
    return sum(1 for w in _WORD_RE.findall(text.lower()) if w in blocked)


def toxicity_reasons(text: str, blocklist: tuple[str, ...] = BLOCKLIST, min_hits: int = 1) -> list[str]:
    """Stage 6: ["blocklist"] if at least `min_hits` blocked words occur (C4 drops a page at one)."""
    return ["blocklist"] if blocklist_hits(text, blocklist) >= min_hits else []
