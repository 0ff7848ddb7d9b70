"""Stage 5, C4's rules (Raffel et al. 2020, section 2.2): keep only sentence-like lines, then judge the page.

Unlike the other filters, this stage changes the text: a line survives only if it looks like a sentence
(ends in terminal punctuation, has at least 5 words, does not talk about javascript or cookie policies),
which removes the menu items and buttons that extraction left behind. The page is then dropped if it
holds lorem ipsum or code (a curly bracket), or if fewer than 3 sentences are left.
"""

from __future__ import annotations

import re

TERMINAL_PUNCTUATION = (".", "!", "?", '"', "\u201d")  # a quoted sentence ends in its closing quote
POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
# The end of a sentence: . ! or ? (maybe several), then maybe closing quotes or brackets, then a space or the end.
_SENTENCE_END = re.compile(r"[.!?]+[\"\u201d\u2019)]*(?=\s|$)")


def c4_keep_line(line: str) -> bool:
    """C4 keeps a line if it ends in terminal punctuation, has at least 5 words, and mentions neither
    javascript nor a cookie/policy phrase."""
    lowered = line.lower()
    return (line.rstrip().endswith(TERMINAL_PUNCTUATION) and len(line.split()) >= 5 and "javascript" not in lowered
            and not any(phrase in lowered for phrase in POLICY_PHRASES))


def c4_clean(text: str) -> tuple[str, list[str]]:
    """Stage 5: (the kept lines, reasons to drop the page: lorem_ipsum, curly_bracket, fewer_than_3_sentences).

    C4 also drops pages with a "bad word"; here that is the toxicity stage's job.
    """
    reasons = []
    if "lorem ipsum" in text.lower():
        reasons.append("lorem_ipsum")
    if "{" in text:
        reasons.append("curly_bracket")
    kept = "\n".join(line for line in text.split("\n") if c4_keep_line(line))
    if len(_SENTENCE_END.findall(kept)) < 3:
        reasons.append("fewer_than_3_sentences")
    return kept, reasons
