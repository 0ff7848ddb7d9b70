"""PII planted into good pages: emails, phone numbers and IPv4 addresses that a masker should find.

PII is not a defect (the page should be kept and the PII masked), so it goes into good pages, and each
record lists what was planted. The phone numbers come in the formats the masker is specified for.
"""

from __future__ import annotations

import random

from course_lib.crawl.blocks import Block, made_up_name

# The phone formats of the masker's reference cases (course_lib.data_cleaning.pii.PHONE_RE).
PHONE_FORMATS = ["{a}{b}{c}", "({a})-{b}-{c}", "({a}) {b} {c}", "{a}-{b}-{c}", "{a}.{b}.{c}", "+1 {a} {b} {c}"]
EMAIL_HOSTS = ["mailbox.example", "post.example.org", "inbox.example.net", "webmail.example"]


def fake_email(rng: random.Random) -> str:
    """A made-up address at a reserved example domain, so it can never reach anyone."""
    first = rng.choice(["anna", "tom", "li", "marek", "sofia", "ravi", "jo", "kim"])
    sep = rng.choice([".", "_", ""])
    return f"{first}{sep}{made_up_name(rng).lower()}{rng.randint(1, 99)}@{rng.choice(EMAIL_HOSTS)}"


def fake_phone(rng: random.Random) -> str:
    """A ten-digit number (North American layout) in one of PHONE_FORMATS."""
    parts = {"a": rng.randint(201, 989), "b": rng.randint(200, 999), "c": f"{rng.randint(0, 9999):04d}"}
    return rng.choice(PHONE_FORMATS).format(**parts)


def fake_ipv4(rng: random.Random) -> str:
    """Four numbers from 1 to 254, dotted."""
    return ".".join(str(rng.randint(1, 254)) for _ in range(4))


PII_SENTENCES = [
    ("email", "If you want the full notes, write to me at {value} and I will send them."),
    ("email", "Questions about this page can be sent to {value} at any time."),
    ("phone", "You can also call the office on {value} during the week."),
    ("phone", "My number is {value} if it is easier to talk it through."),
    ("ip", "The server at {value} kept refusing the connection until I restarted it."),
    ("ip", "Our log shows many requests from {value} in the last hour."),
]


def add_pii(rng: random.Random, blocks: list[Block]) -> tuple[list[Block], tuple[tuple[str, str], ...]]:
    """Append one to three sentences with PII to random paragraphs; return the blocks and what was planted."""
    blocks, planted = list(blocks), []
    paragraphs = [i for i, (tag, _) in enumerate(blocks) if tag == "p"]
    for _ in range(rng.randint(1, 3)):
        kind, sentence = rng.choice(PII_SENTENCES)
        value = {"email": fake_email, "phone": fake_phone, "ip": fake_ipv4}[kind](rng)
        i = rng.choice(paragraphs)
        blocks[i] = (blocks[i][0], blocks[i][1] + " " + sentence.format(value=value))
        planted.append((kind, value))
    return blocks, tuple(planted)
