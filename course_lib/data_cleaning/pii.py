"""Stage 7, PII masking: emails, phone numbers and IPv4 addresses -> placeholders.

We replace, not drop: the rest of the page is fine. The placeholders are the ones Dolma uses; they
contain no digit and no "@", so masking twice finds nothing new. Emails are masked first because they
may hold digits that would otherwise look like a phone number or an address.
"""

from __future__ import annotations

import re

PII_PLACEHOLDERS = {"email": "|||EMAIL_ADDRESS|||", "phone": "|||PHONE_NUMBER|||", "ip": "|||IP_ADDRESS|||"}
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
IPV4_RE = re.compile(rf"(?<![\d.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\d|\.\d)")
# 2831823829, (283)-182-3829, (283) 182 3829, 283-182-3829, 283.182.3829, +1 283 182 3829
PHONE_RE = re.compile(r"(?<![\w+])(?:\+1[ .\-]?)?(?:\(\d{3}\)[ .\-]?|\d{3}[ .\-]?)\d{3}[ .\-]?\d{4}(?!\w)")
PII_PATTERNS = {"email": EMAIL_RE, "ip": IPV4_RE, "phone": PHONE_RE}  # emails first: they may hold digits


def find_pii(text: str) -> list[tuple[str, str]]:
    """Every (kind, matched text) that `mask_pii` would replace, in masking order."""
    found = []
    for kind, pattern in PII_PATTERNS.items():
        found += [(kind, m.group(0)) for m in pattern.finditer(text)]
        text = pattern.sub(PII_PLACEHOLDERS[kind], text)
    return found


def mask_pii(text: str) -> tuple[str, dict[str, int]]:
    """Stage 7: replace emails, IPv4 addresses and phone numbers by placeholders.

    Returns (masked text, {"email": n, "phone": n, "ip": n}) counting only new replacements, so
    placeholders already in the text are not counted again.
    """
    counts = {"email": 0, "phone": 0, "ip": 0}
    for kind, pattern in PII_PATTERNS.items():
        text, counts[kind] = pattern.subn(PII_PLACEHOLDERS[kind], text)
    return text, counts
