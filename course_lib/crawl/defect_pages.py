"""Defective content: the pages a cleaning pipeline should drop, one generator per defect.

    spam_blocks          SEO articles, keyword stuffing, repeated lines, link farms
    gibberish_blocks     random letters, keyboard mashing, word salad
    toxic_blocks         a clean forum thread with placeholder insults (words from the filter's BLOCKLIST)
    low_quality_blocks   too short, all caps, lorem ipsum, mostly bullets
    BOILERPLATE_MAIN     the whole main content of a page that is only chrome
    not_text_payload     an empty response, or a PNG, PDF or gzip file
    near_duplicate       small word edits to an earlier page

(Foreign-language pages are in `foreign_pages`.) Most generators also return the record's `detail`: the
style they drew, or for toxic pages the number of insults.
"""

from __future__ import annotations

import random
import string

from course_lib.crawl.blocks import Block, sentences_to_paragraphs
from course_lib.data_cleaning.toxicity import BLOCKLIST

# ----------------------------------------------------------------------------------------------------
# Spam: pages written for search engines, not for readers.

SPAM_PHRASES = ["cheap watches", "best price", "buy now", "free shipping", "discount code", "replica bags",
                "casino bonus", "weight loss pills", "cheap flights", "top deals", "limited offer"]
SEO_SENTENCES = ["Looking for {k}? You have come to the right place.", "Our {k} are the best you can find online.",
                 "Everyone loves {k} because they are such great value.", "Order your {k} today and save money.",
                 "We have been selling {k} for over {n} years.", "Read the reviews of our {k} from happy customers.",
                 "Do not miss our special offers on {k} this week.", "With our {k} you will never be disappointed.",
                 "Compare our {k} with other shops and see the difference.", "Fast delivery of {k} to your door.",
                 "Thousands of people trust us for {k} every day.", "Sign up to hear first about new {k}."]


def spam_blocks(rng: random.Random) -> tuple[list[Block], str]:
    """Keyword spam, from blatant (repeated lines) to subtle (an "article" that repeats one phrase)."""
    keywords = rng.sample(SPAM_PHRASES, 3)
    style = rng.choice(["seo article", "stuffing", "repeated lines", "link farm"])
    title = " ".join(k.title() for k in keywords)
    if style == "seo article":
        sentences = [t.format(k=keywords[0], n=rng.randint(3, 30)) for t in rng.sample(SEO_SENTENCES, rng.randint(8, 11))]
        return [("h1", keywords[0].title())] + [("p", p) for p in sentences_to_paragraphs(rng, sentences, 2, 4)], style
    if style == "stuffing":
        sentences = [f"{rng.choice(keywords).capitalize()} {rng.choice(keywords)} {rng.choice(keywords)}, "
                     f"{rng.choice(['the', 'best', 'buy', 'get'])} {rng.choice(keywords)} {rng.choice(keywords)}!"
                     for _ in range(rng.randint(15, 40))]
        return [("h1", title)] + [("p", p) for p in sentences_to_paragraphs(rng, sentences, 3, 6)], style
    if style == "repeated lines":
        line = f"Get {keywords[0]} and {keywords[1]} today, {keywords[2]} for everyone!"
        return [("h1", title)] + [("p", line)] * rng.randint(8, 25), style
    items = [("li", f"{rng.choice(keywords)} {rng.choice(keywords)} {rng.randint(1, 99)}") for _ in range(rng.randint(20, 50))]
    return [("h1", title)] + items, style


# ----------------------------------------------------------------------------------------------------
# Gibberish: text in no language.

WORD_SALAD = ("river window quickly seven under paper green although market softly engine pillow because "
              "orange thunder carefully basket mountain eleven whisper copper ladder maybe garden violin").split()


def gibberish_blocks(rng: random.Random) -> tuple[list[Block], str]:
    """Paragraphs of random letters, keyboard mashing or word salad (real words, no sense)."""
    style = rng.choice(["random letters", "keyboard mash", "word salad"])
    sentences = []
    for _ in range(rng.randint(12, 30)):
        if style == "random letters":
            words = ["".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 9)))
                     for _ in range(rng.randint(5, 12))]
        elif style == "keyboard mash":
            row = rng.choice(["qwertyuiop", "asdfghjkl", "zxcvbnm", "qazwsxedc"])
            words = ["".join(rng.choice(row) for _ in range(rng.randint(3, 8))) for _ in range(rng.randint(4, 10))]
        else:
            words = rng.sample(WORD_SALAD, rng.randint(6, 11))
        sentences.append(" ".join(words).capitalize() + ".")
    return [("p", p) for p in sentences_to_paragraphs(rng, sentences, 3, 5)], style


# ----------------------------------------------------------------------------------------------------
# Toxic: a clean thread that turns nasty (the filter's own blocked words stand in for insults).

INSULTS = [
    "You are a complete {w}, and everyone here knows it.",
    "What a {w} answer, did you even read the question?",
    "Only a {w} would post something this dumb.",
    "Go away, you {w}, nobody asked you.",
    "This whole thread is full of {w} people and {w2} ideas.",
]


def toxic_blocks(rng: random.Random, clean: list[Block]) -> tuple[list[Block], str]:
    """A thread that turns nasty: 1 to 6 placeholder insults spliced into a clean thread."""
    blocks, n = list(clean), rng.choice([1, 2, 2, 3, 3, 4, 5, 6])
    paragraphs = [i for i, (tag, _) in enumerate(blocks) if tag == "p"]
    used = 0
    while used < n:
        insult = rng.choice(INSULTS)
        words = {"w": rng.choice(BLOCKLIST), "w2": rng.choice(BLOCKLIST)}
        if "{w2}" in insult and used + 2 > n:
            continue
        i = rng.choice(paragraphs)
        blocks[i] = (blocks[i][0], blocks[i][1] + " " + insult.format(**words))
        used += 2 if "{w2}" in insult else 1
    return blocks, str(n)


# ----------------------------------------------------------------------------------------------------
# Low quality and boilerplate: too little real text.

LOREM = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et "
         "dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex "
         "ea commodo consequat. Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu "
         "fugiat nulla pariatur. Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt "
         "mollit anim id est laborum.")
SHORT_PAGES = ["Coming soon! We are working on this page.", "Thanks for visiting. More content will follow.",
               "Page under construction.", "Click here to continue.", "Nothing to see here yet, check back later!"]
BULLET_ITEMS = ["Free delivery", "Great value", "Easy returns", "Top rated", "New arrivals", "Gift ideas",
                "Open daily", "Best sellers", "Member prices", "Call us today", "Fast service", "Local shop"]


def low_quality_blocks(rng: random.Random, clean: list[Block]) -> tuple[list[Block], str]:
    """A placeholder page, the clean content in all caps, lorem ipsum, or a list of bullet points."""
    style = rng.choice(["short", "caps", "lorem", "bullets"])
    if style == "short":
        return [("p", rng.choice(SHORT_PAGES))], style
    if style == "caps":
        return [(tag, text.upper()) for tag, text in clean], style
    if style == "lorem":
        return [("h1", "Lorem ipsum")] + [("p", LOREM)] * rng.randint(1, 3), style
    items = rng.sample(BULLET_ITEMS, rng.randint(8, 12))
    return [("p", "\u2022 " + item) for item in items], style


# All the main content a boilerplate page has (nothing at all, or a placeholder).
BOILERPLATE_MAIN = ["", "Please enable JavaScript to view this page.", "Loading...",
                    "This content is only available to subscribers.", "404 - Page not found"]


# ----------------------------------------------------------------------------------------------------
# Not text: what a crawler gets when a URL is not a web page.

def not_text_payload(rng: random.Random) -> tuple[bytes, str]:
    """An empty response, or the bytes of a PNG, PDF or gzip file (a real header, random contents)."""
    style = rng.choice(["empty", "png", "pdf", "gzip"])
    body = bytes(rng.randrange(256) for _ in range(rng.randint(200, 2000)))
    return {"empty": b"", "png": b"\x89PNG\r\n\x1a\n" + body, "pdf": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + body,
            "gzip": b"\x1f\x8b\x08\x00" + body}[style], style


# ----------------------------------------------------------------------------------------------------
# Near duplicates: an earlier page with a few words changed.

FILLERS = ["really", "very", "quite", "also", "then", "just", "still", "so", "later", "nice"]


def near_duplicate(rng: random.Random, blocks: list[Block]) -> list[Block]:
    """Small edits to an earlier page: one word in 25 to 70 swapped, dropped or added. The last word of
    a block is never touched, so every line keeps its final punctuation."""
    edited = [(tag, text.split()) for tag, text in blocks]
    spots = [(i, w) for i, (tag, tokens) in enumerate(edited) if tag == "p" for w in range(len(tokens) - 1)]
    for _ in range(max(1, len(spots) // rng.randint(25, 70))):
        i, w = rng.choice(spots)
        tokens = edited[i][1]
        if w >= len(tokens) - 1:
            continue
        action = rng.choice(["swap", "drop", "add"])
        if action == "swap":  # keep the punctuation that followed the word
            tokens[w] = rng.choice(FILLERS) + tokens[w][len(tokens[w].rstrip(string.punctuation)):]
        elif action == "drop" and len(tokens) > 3:
            del tokens[w]
        else:
            tokens.insert(w, rng.choice(FILLERS))
    return [(tag, " ".join(tokens)) for tag, tokens in edited if tokens]
