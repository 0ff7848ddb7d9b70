"""Page content as a list of blocks (tag, text): one list renders to both the HTML and the true main text.

Writing the content once as blocks is what makes the labels exact: `blocks_to_html` gives the markup
that goes into the page, `blocks_to_text` what a perfect extractor would return from it. Also here: the
small helpers every page generator shares (paragraphs from sentences, made-up names).
"""

from __future__ import annotations

import html
import random

Block = tuple[str, str]  # ("h1" | "h2" | "p" | "li" | "pre", text)


def blocks_to_text(blocks: list[Block]) -> str:
    """What a perfect extractor returns: one line per block (a code block gives one line per code line)."""
    lines = []
    for tag, text in blocks:
        for line in text.split("\n") if tag == "pre" else [text]:
            line = " ".join(line.split())
            if line:
                lines.append(line)
    return "\n".join(lines)


def blocks_to_html(blocks: list[Block]) -> str:
    """The blocks as HTML: text escaped, a list item in its own list, code as <pre><code>."""
    out = []
    for tag, text in blocks:
        if tag == "pre":
            out.append(f"<pre><code>{html.escape(text, quote=False)}</code></pre>")
        elif tag == "li":
            out.append(f"<ul><li>{html.escape(text, quote=False)}</li></ul>")
        else:
            out.append(f"<{tag}>{html.escape(text, quote=False)}</{tag}>")
    return "\n".join(out)


def sentences_to_paragraphs(rng: random.Random, sentences: list[str], low: int = 2, high: int = 4) -> list[str]:
    """The sentences in order, grouped into paragraphs of `low` to `high` sentences."""
    paragraphs = []
    while sentences:
        k = rng.randint(low, high)
        paragraphs.append(" ".join(sentences[:k]))
        sentences = sentences[k:]
    return paragraphs


SYLLABLES = ("bram holt quen ford ash wick mor dale ley thorn brook fen stead wyn cal ver ton mere gate "
             "hal sted lin kirk ow el ber ros nor vel tarn by").split()


def made_up_name(rng: random.Random, parts: int = 2) -> str:
    """A capitalized name of `parts` syllables ("Holtmere"): towns, rivers, people, link titles."""
    return "".join(rng.choice(SYLLABLES) for _ in range(parts)).capitalize()
