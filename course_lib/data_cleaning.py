"""Chapter 4: from raw crawled bytes to pretraining text, one small stage at a time.

The stages, in the order the pipeline runs them (each one is a function you can call on its own):

    extract_text          bytes -> main text (decode, drop markup and boilerplate)   reasons: empty, binary...
    language_reasons      keep English, drop other languages and text no language fits
    gopher_quality_reasons       Gopher's document rules (Rae et al. 2021): length, symbols, stop words...
    gopher_repetition_reasons    Gopher's repetition rules: duplicate lines, paragraphs and n-grams
    c4_clean              C4's line rules (Raffel et al. 2020): keep sentence-like lines, drop pages
    toxicity_reasons      a blocklist, like C4's "bad words" list
    mask_pii              emails, phone numbers, IPv4 -> placeholders (text kept, counts returned)
    exact_duplicate_of    the same normalized text seen before
    near_duplicates       MinHash + LSH candidates, verified by true Jaccard, clustered with union-find
    mix_domains           how often each kept document is used, given target weights per domain

Every filter returns the list of reasons it rejected a document (empty: keep), so a reader can always
ask "why did this page go?". Bad input (malformed HTML, binary bytes, empty or huge pages) never raises:
it comes back with a reason. `clean_crawl` runs them all and `stage_scores` scores every stage against
the labels of `course_lib.crawl`.
"""

from __future__ import annotations

import codecs
import hashlib
import itertools
import math
import re
import string
import zlib
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser

import numpy as np

from course_lib.crawl import BLOCKLIST

# ----------------------------------------------------------------------------------------------------
# 1. Bytes to text. Common Crawl's WARC records are bytes; the charset may be declared, wrong or missing.

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
# 2. HTML to main text. We keep the text of the page body, one line per block element, and skip
#    anything that is markup-only (scripts, styles) or boilerplate by tag or by class/id name.

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

    def handle_starttag(self, tag: str, attrs: list) -> None:
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


# ----------------------------------------------------------------------------------------------------
# 3. Language identification: a character trigram language model per language, trained on a few
#    sentences each (below). Predict the language whose model is least surprised (fewest bits per
#    character); if even that one is very surprised, the text is in no language we know ("und").

LANGUAGE_SAMPLES = {
    "en": "The weather was warm, so we walked along the river to the old mill and had lunch in the garden. "
          "She told me that the library would be closed on Monday because of the holiday. "
          "If you want to learn how it works, read the manual first and then try it yourself. "
          "They have lived in this town for many years and know everyone who works at the market. "
          "What time does the next train leave for the city? I think it is at half past seven. "
          "Our team has been working on this problem for a while, and we would welcome any ideas. "
          "The function returns a list with one value for each line of the file. "
          "He found his keys under the chair, right where he had left them the night before. "
          "It is one of the largest birds in the region and is often seen near lakes and rivers.",
    "fr": "Il faisait beau, alors nous avons marché jusqu'au vieux moulin et nous avons déjeuné dehors. "
          "Elle m'a dit que la bibliothèque serait fermée lundi à cause du jour férié. "
          "Si tu veux comprendre comment cela fonctionne, lis d'abord le mode d'emploi. "
          "Ils habitent dans cette ville depuis longtemps et connaissent tout le monde au marché. "
          "À quelle heure part le prochain train pour la ville? Je crois que c'est à sept heures et demie. "
          "Notre équipe travaille sur ce problème depuis un moment et toutes les idées sont les bienvenues. "
          "Il a retrouvé ses clés sous la chaise, là où il les avait laissées la veille au soir. "
          "C'est un des plus grands oiseaux de la région, on le voit souvent près des lacs. "
          "La fonction renvoie une liste avec une valeur pour chaque ligne du fichier.",
    "de": "Das Wetter war schön, also sind wir zur alten Mühle gelaufen und haben im Garten gegessen. "
          "Sie hat mir gesagt, dass die Bibliothek am Montag wegen des Feiertags geschlossen ist. "
          "Wenn du wissen willst, wie es funktioniert, lies zuerst die Anleitung. "
          "Sie wohnen schon viele Jahre in dieser Stadt und kennen jeden auf dem Markt. "
          "Wann fährt der nächste Zug in die Stadt? Ich glaube, um halb acht. "
          "Unser Team arbeitet schon eine Weile an diesem Problem, und wir freuen uns über jede Idee. "
          "Er hat seine Schlüssel unter dem Stuhl gefunden, genau dort, wo er sie am Abend gelassen hatte. "
          "Das ist einer der größten Vögel der Gegend und man sieht ihn oft an Seen und Flüssen. "
          "Die Funktion gibt eine Liste mit einem Wert für jede Zeile der Datei zurück.",
    "es": "Hacía buen tiempo, así que caminamos hasta el viejo molino y comimos en el jardín. "
          "Ella me dijo que la biblioteca estaría cerrada el lunes por la fiesta. "
          "Si quieres saber cómo funciona, lee primero el manual y luego pruébalo tú mismo. "
          "Viven en esta ciudad desde hace muchos años y conocen a todos en el mercado. "
          "¿A qué hora sale el próximo tren para la ciudad? Creo que a las siete y media. "
          "Nuestro equipo lleva un tiempo trabajando en este problema y agradecemos cualquier idea. "
          "Encontró sus llaves debajo de la silla, justo donde las había dejado la noche anterior. "
          "Es una de las aves más grandes de la región y se ve a menudo cerca de lagos y ríos. "
          "La función devuelve una lista con un valor para cada línea del archivo.",
    "ru": "Погода была тёплая, поэтому мы пошли к старой мельнице и пообедали в саду. "
          "Она сказала мне, что в понедельник библиотека будет закрыта из-за праздника. "
          "Если хочешь понять, как это работает, сначала прочитай инструкцию. "
          "Они много лет живут в этом городе и знают всех на рынке. "
          "Когда уходит следующий поезд в город? Кажется, в половине восьмого. "
          "Наша команда давно работает над этой задачей, и мы будем рады любым идеям. "
          "Он нашёл свои ключи под стулом, там, где оставил их накануне вечером. "
          "Это одна из самых больших птиц в этих местах, её часто видят у озёр и рек. "
          "Функция возвращает список с одним значением для каждой строки файла.",
    "el": "Ο καιρός ήταν ζεστός, οπότε περπατήσαμε ως τον παλιό μύλο και φάγαμε στον κήπο. "
          "Μου είπε ότι η βιβλιοθήκη θα είναι κλειστή τη Δευτέρα λόγω της γιορτής. "
          "Αν θέλεις να καταλάβεις πώς λειτουργεί, διάβασε πρώτα τις οδηγίες. "
          "Ζουν σε αυτή την πόλη πολλά χρόνια και γνωρίζουν όλους στην αγορά. "
          "Τι ώρα φεύγει το επόμενο τρένο για την πόλη; Νομίζω στις επτάμισι. "
          "Η ομάδα μας δουλεύει καιρό σε αυτό το πρόβλημα και κάθε ιδέα είναι ευπρόσδεκτη. "
          "Βρήκε τα κλειδιά του κάτω από την καρέκλα, εκεί που τα είχε αφήσει το προηγούμενο βράδυ. "
          "Είναι ένα από τα μεγαλύτερα πουλιά της περιοχής και το βλέπουμε συχνά κοντά σε λίμνες. "
          "Η συνάρτηση επιστρέφει μια λίστα με μία τιμή για κάθε γραμμή του αρχείου.",
}
MAX_BITS_PER_CHAR = 7.0  # above this even the best model is lost: gibberish or an unknown language
LANGID_CHARS = 1000  # judging the first 1,000 characters is plenty, and keeps the stage fast


def _langid_normalize(text: str) -> str:
    return " " + " ".join(text.lower().split()) + " "


class CharTrigramModel:
    """P(c | two previous characters), interpolated with bigram and add-one unigram estimates.

    Interpolation (weights 0.6, 0.3, 0.1) lets a model give a sensible probability to trigrams it never
    saw; the unigram term gives any character, even from another script, a small non-zero probability.
    """

    WEIGHTS = (0.6, 0.3, 0.1)
    ALPHABET = 4096  # room for characters never seen in training (add-one smoothing over this many)

    def __init__(self, text: str) -> None:
        text = _langid_normalize(text)
        self.unigrams = Counter(text)
        self.bigrams = Counter(text[i:i + 2] for i in range(len(text) - 1))
        self.trigrams = Counter(text[i:i + 3] for i in range(len(text) - 2))
        self.contexts1 = Counter(text[:-1])  # counts of a character as a context
        self.contexts2 = Counter(text[i:i + 2] for i in range(len(text) - 2))
        self.total = len(text)

    def log2prob(self, trigram: str) -> float:
        """log2 P(trigram[2] | trigram[:2])."""
        w3, w2, w1 = self.WEIGHTS
        p1 = (self.unigrams[trigram[2]] + 1) / (self.total + self.ALPHABET)
        c1 = self.contexts1[trigram[1]]
        p2 = self.bigrams[trigram[1:]] / c1 if c1 else 0.0
        c2 = self.contexts2[trigram[:2]]
        p3 = self.trigrams[trigram] / c2 if c2 else 0.0
        return math.log2(w3 * p3 + w2 * p2 + w1 * p1)


class LanguageIdentifier:
    """One character trigram model per language; `bits_per_char` scores a text under all of them at once."""

    def __init__(self, samples: dict[str, str] = LANGUAGE_SAMPLES) -> None:
        if not samples:
            raise ValueError("need at least one language sample to train on")
        self.languages = list(samples)
        self.models = [CharTrigramModel(text) for text in samples.values()]
        self.rows: dict[str, tuple[float, ...]] = {}  # trigram -> its log2 probability under each model

    def _row(self, trigram: str) -> tuple[float, ...]:
        row = self.rows.get(trigram)
        if row is None:
            row = self.rows[trigram] = tuple(model.log2prob(trigram) for model in self.models)
        return row

    def bits_per_char(self, text: str) -> dict[str, float]:
        """Mean -log2 P(character | two before) of the text's first LANGID_CHARS characters, per language."""
        text = _langid_normalize(text[:LANGID_CHARS])
        trigrams = Counter(text[i:i + 3] for i in range(len(text) - 2))
        counts = np.fromiter(trigrams.values(), dtype=float, count=len(trigrams))
        logp = np.array([self._row(t) for t in trigrams]).reshape(len(trigrams), len(self.languages))
        bits = -(counts @ logp) / max(1, len(text) - 2)
        return dict(zip(self.languages, bits.tolist()))

    def identify(self, text: str, max_bits: float = MAX_BITS_PER_CHAR) -> tuple[str, float]:
        """(language code or "und", bits per character under the best model)."""
        if not text.strip():
            return "und", float("inf")
        scores = self.bits_per_char(text)
        best = min(scores, key=scores.get)
        return (best if scores[best] <= max_bits else "und"), scores[best]


_DEFAULT_IDENTIFIER: LanguageIdentifier | None = None


def default_identifier() -> LanguageIdentifier:
    """The identifier trained on LANGUAGE_SAMPLES (trained once, on first use)."""
    global _DEFAULT_IDENTIFIER
    if _DEFAULT_IDENTIFIER is None:
        _DEFAULT_IDENTIFIER = LanguageIdentifier()
    return _DEFAULT_IDENTIFIER


def language_reasons(text: str, identifier: LanguageIdentifier | None = None, keep: tuple[str, ...] = ("en",),
                     max_bits: float = MAX_BITS_PER_CHAR) -> list[str]:
    """Stage 2: ["language:xx"] unless the text is in one of the `keep` languages."""
    lang, _ = (identifier or default_identifier()).identify(text, max_bits)
    return [] if lang in keep else [f"language:{lang}"]


# ----------------------------------------------------------------------------------------------------
# 4. Gopher quality rules (Rae et al. 2021, appendix A): thresholds as published.

STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
BULLETS = ("\u2022", "\u25cf", "\u25e6", "\u2023", "-", "*", "\u00b7")  # • ● ◦ ‣ - * ·
ELLIPSES = ("...", "\u2026")
GOPHER_QUALITY_RULES = {
    "word_count": "between 50 and 100,000 words",
    "mean_word_length": "mean word length between 3 and 10 characters",
    "hash_ratio": "at most 0.1 '#' per word",
    "ellipsis_ratio": "at most 0.1 ellipses ('...' or '\u2026') per word",
    "bullet_lines": "at most 90% of lines start with a bullet",
    "ellipsis_lines": "at most 30% of lines end with an ellipsis",
    "alphabetic_words": "at least 80% of words contain a letter",
    "stop_words": "at least 2 stop words (the, be, to, of, and, that, have, with)",
}


def gopher_quality_reasons(text: str) -> list[str]:
    """The Gopher quality rules a text breaks (keys of GOPHER_QUALITY_RULES, in that order).

    Words are `text.split()`. Word length and stop words use each word stripped of punctuation at both
    ends (words that are only punctuation do not count toward the mean); stop words match case-sensitively,
    so an all-caps page has none. Lines are the non-empty lines, stripped.
    """
    words = text.split()
    bare = [w.strip(string.punctuation + "\u2026\u201c\u201d\u2018\u2019") for w in words]
    lengths = [len(w) for w in bare if w]
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    n = len(words)
    reasons = []
    if not 50 <= n <= 100_000:
        reasons.append("word_count")
    if not lengths or not 3 <= sum(lengths) / len(lengths) <= 10:
        reasons.append("mean_word_length")
    if n and text.count("#") / n > 0.1:
        reasons.append("hash_ratio")
    if n and (text.count("...") + text.count("\u2026")) / n > 0.1:
        reasons.append("ellipsis_ratio")
    if lines and sum(line.startswith(BULLETS) for line in lines) / len(lines) > 0.9:
        reasons.append("bullet_lines")
    if lines and sum(line.endswith(ELLIPSES) for line in lines) / len(lines) > 0.3:
        reasons.append("ellipsis_lines")
    if n and sum(any(ch.isalpha() for ch in w) for w in words) / n < 0.8:
        reasons.append("alphabetic_words")
    if sum(w in STOP_WORDS for w in bare) < 2:
        reasons.append("stop_words")
    return reasons


# ----------------------------------------------------------------------------------------------------
# 5. Gopher repetition rules: a page that repeats itself is spam, a menu, or broken.

TOP_NGRAM_MAX = {2: 0.20, 3: 0.18, 4: 0.16}
DUP_NGRAM_MAX = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}


def _duplicate_share(items: list[str]) -> tuple[float, float]:
    """(fraction of items that repeat an earlier one, fraction of characters in those repeats)."""
    seen, dup_items, dup_chars = set(), 0, 0
    for item in items:
        if item in seen:
            dup_items += 1
            dup_chars += len(item)
        seen.add(item)
    total_chars = sum(len(item) for item in items)
    return dup_items / max(1, len(items)), dup_chars / max(1, total_chars)


def _ids_and_lengths(words: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each word as an integer id (equal words, equal ids) and its length in characters."""
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
    ids = np.fromiter(map(vocab.__getitem__, words), dtype=np.int64, count=len(words))
    return ids, np.fromiter(map(len, words), dtype=np.int64, count=len(words))


def _ngram_classes(ids: np.ndarray, max_n: int):
    """For n = 1..max_n: (n, which distinct n-gram starts at each position, count of each distinct n-gram).

    The n-grams are numbered from the (n-1)-grams: (class of the (n-1)-gram at i, word at i+n-1) is a
    pair of small integers, so one int64 per position identifies the n-gram exactly.
    """
    classes, width = ids, int(ids.max()) + 1 if len(ids) else 1
    for n in range(1, min(max_n, len(ids)) + 1):
        if n > 1:
            classes = classes[:-1] * width + ids[n - 1:]
        _, classes, counts = np.unique(classes, return_inverse=True, return_counts=True)
        classes = classes.ravel()
        yield n, classes, counts


def _top_fraction(classes: np.ndarray, counts: np.ndarray, lengths: np.ndarray, n: int) -> float:
    chars_of = np.zeros(len(counts), dtype=np.int64)
    chars_of[classes] = np.lib.stride_tricks.sliding_window_view(lengths, n).sum(axis=1)  # per distinct n-gram
    best = np.lexsort((chars_of, counts))[-1]  # most frequent, then longest
    return float(counts[best] * chars_of[best] / lengths.sum()) if counts[best] > 1 else 0.0


def _duplicate_fraction(classes: np.ndarray, counts: np.ndarray, lengths: np.ndarray, n: int) -> float:
    repeated = np.flatnonzero(counts[classes] > 1)  # start positions of repeated n-grams
    edges = np.zeros(len(lengths) + 1, dtype=np.int64)  # +1 where a repeated n-gram starts, -1 after it ends
    np.add.at(edges, repeated, 1)
    np.add.at(edges, repeated + n, -1)
    inside = np.cumsum(edges[:-1]) > 0
    return float(lengths[inside].sum() / lengths.sum())


def _ngram_fraction(words: list[str], n: int, fraction) -> float:
    ids, lengths = _ids_and_lengths(words)
    for m, classes, counts in _ngram_classes(ids, n):
        if m == n:
            return fraction(classes, counts, lengths, n)
    return 0.0  # fewer than n words


def top_ngram_char_fraction(words: list[str], n: int) -> float:
    """Characters in all occurrences of the most frequent word n-gram / characters of all words.

    Characters are those of the words (spaces not counted). Ties go to the n-gram with more characters.
    An n-gram that occurs only once is not a repetition: the fraction is then 0.
    """
    return _ngram_fraction(words, n, _top_fraction)


def duplicate_ngram_char_fraction(words: list[str], n: int) -> float:
    """Characters of the words that lie inside some word n-gram occurring more than once / all."""
    return _ngram_fraction(words, n, _duplicate_fraction)


def gopher_repetition_reasons(text: str) -> list[str]:
    """Gopher repetition rules a text breaks: duplicate lines (0.30 of lines, 0.20 of characters),
    duplicate paragraphs (0.30, 0.20), top 2/3/4-gram (0.20/0.18/0.16), duplicate 5..10-grams (0.15..0.10)."""
    reasons = []
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    line_frac, line_chars = _duplicate_share(lines)
    para_frac, para_chars = _duplicate_share(paragraphs)
    if line_frac > 0.30:
        reasons.append("dup_line_fraction")
    if line_chars > 0.20:
        reasons.append("dup_line_chars")
    if para_frac > 0.30:
        reasons.append("dup_paragraph_fraction")
    if para_chars > 0.20:
        reasons.append("dup_paragraph_chars")
    ids, lengths = _ids_and_lengths(text.split())
    for n, classes, counts in _ngram_classes(ids, max(DUP_NGRAM_MAX)):
        if n in TOP_NGRAM_MAX and _top_fraction(classes, counts, lengths, n) > TOP_NGRAM_MAX[n]:
            reasons.append(f"top_{n}gram")
        if n in DUP_NGRAM_MAX and _duplicate_fraction(classes, counts, lengths, n) > DUP_NGRAM_MAX[n]:
            reasons.append(f"dup_{n}gram")
    return reasons


# ----------------------------------------------------------------------------------------------------
# 6. C4's rules (Raffel et al. 2020, section 2.2): keep only sentence-like lines, then judge the page.

TERMINAL_PUNCTUATION = (".", "!", "?", '"', "\u201d")
POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
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


# ----------------------------------------------------------------------------------------------------
# 7. Toxicity by blocklist. Real lists (C4 used "List of Dirty, Naughty, Obscene, and Otherwise Bad
#    Words") hold a few hundred words; the course's placeholder list holds made-up ones.

_WORD_RE = re.compile(r"\w+")


def blocklist_hits(text: str, blocklist: tuple[str, ...] = BLOCKLIST) -> int:
    """How many words of the text (lowercased, whole words only) are on the blocklist."""
    blocked = set(blocklist)
    return sum(1 for w in _WORD_RE.findall(text.lower()) if w in blocked)


def toxicity_reasons(text: str, blocklist: tuple[str, ...] = BLOCKLIST, min_hits: int = 1) -> list[str]:
    """Stage 6: ["blocklist"] if at least `min_hits` blocked words occur (C4 drops a page at one)."""
    return ["blocklist"] if blocklist_hits(text, blocklist) >= min_hits else []


# ----------------------------------------------------------------------------------------------------
# 8. PII masking. We replace, not drop: the rest of the page is fine. The placeholders are the ones
#    Dolma uses; they contain no digit and no "@", so masking twice finds nothing new.

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


# ----------------------------------------------------------------------------------------------------
# 9. Exact deduplication: hash the normalized text, keep the first page with each hash.

def dedup_key(text: str) -> str:
    """SHA-1 of the text lowercased with whitespace collapsed (so trivial reformatting still matches)."""
    return hashlib.sha1(" ".join(text.lower().split()).encode("utf-8")).hexdigest()


def exact_duplicate_of(texts: list[str]) -> list[int | None]:
    """For each text, the index of the first earlier text with the same key, or None."""
    first: dict[str, int] = {}
    duplicate_of = []
    for i, text in enumerate(texts):
        key = dedup_key(text)
        duplicate_of.append(first.get(key))
        first.setdefault(key, i)
    return duplicate_of


# ----------------------------------------------------------------------------------------------------
# 10. Near deduplication with MinHash and LSH (Broder 1997; FineWeb's settings: word 5-grams,
#     112 hashes = 14 bands x 8 rows).
#
#     Jaccard(A, B) = |A & B| / |A | B| over the documents' sets of word 5-grams ("shingles"). For a random
#     hash h, P[min h(A) == min h(B)] = Jaccard(A, B); 112 such hashes make a signature. LSH cuts it into
#     14 bands of 8 rows: two documents become candidates if all 8 rows of some band agree, which
#     happens with probability 1 - (1 - s^8)^14. Candidates are then checked with their true Jaccard.

PRIME = (1 << 31) - 1  # h(x) = (a*x + b) mod PRIME; a < 2^31 and x < 2^32 keep a*x + b below 2^64
EMPTY_SIGNATURE = np.uint32(0xFFFFFFFF)  # the signature value of a document without shingles
NUM_PERM, BANDS, ROWS, SHINGLE = 112, 14, 8, 5
_MIX = np.uint64(0x9E3779B97F4A7C15)


def dedup_words(text: str) -> list[str]:
    """Lowercase word tokens (letters, digits, underscore): punctuation and spacing do not matter."""
    return _WORD_RE.findall(text.lower())


def _combine(hashes: np.ndarray, n: int) -> np.ndarray:
    """32-bit hashes of all n-grams of a sequence of 32-bit word hashes: a polynomial, then a mix."""
    h = np.zeros(len(hashes) - n + 1, dtype=np.uint64)
    for k in range(n):
        h = h * _MIX + hashes[k:len(hashes) - n + 1 + k]
    h ^= h >> np.uint64(29)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(32)
    return (h & np.uint64(0xFFFFFFFF)).astype(np.uint32)


def word_hashes(words: list[str]) -> np.ndarray:
    """CRC-32 of every word (uint64 holding 32-bit values, shape (len(words),)); each distinct word is
    hashed once. CRC-32 depends only on the word, so equal texts give equal shingles on any machine."""
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}  # distinct words, in order of appearance
    ids = np.fromiter(map(vocab.__getitem__, words), dtype=np.int64, count=len(words))
    table = np.fromiter((zlib.crc32(w.encode("utf-8")) for w in vocab), dtype=np.uint64, count=len(vocab))
    return table[ids]


def shingle_hashes(text: str, n: int = SHINGLE) -> np.ndarray:
    """The sorted, unique 32-bit hashes of the text's word n-grams (uint32, shape (n_shingles,)).

    A text with fewer than n words (but at least one) is a single shingle; an empty text has none.
    """
    hashes = word_hashes(dedup_words(text))
    if len(hashes) == 0:
        return np.zeros(0, dtype=np.uint32)
    return np.unique(_combine(hashes, min(n, len(hashes))))


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique for a big 1-D integer array, by sorting (faster here than NumPy's hash-based unique)."""
    values = np.sort(values)
    return values[np.concatenate([[True], values[1:] != values[:-1]])] if len(values) else values


def shingle_sets(docs: list[list[str]], n: int = SHINGLE) -> list[np.ndarray]:
    """`[shingle_hashes(text, n) for text in texts]` for a whole corpus in a few NumPy passes.

    docs: each document's words, `[dedup_words(text) for text in texts]`. All words go into one array;
    the n-gram hash of every position is computed at once, positions whose n-gram would run into the
    next document are dropped, and one sort by (document, hash) makes each document's set sorted and
    unique.
    """
    if not docs:
        return []
    lengths = np.fromiter(map(len, docs), dtype=np.int64, count=len(docs))
    ends = np.cumsum(lengths)  # where each document's words end in the flat array
    hashes = word_hashes(list(itertools.chain.from_iterable(docs)))
    doc_of = np.repeat(np.arange(len(docs), dtype=np.int64), lengths)  # document of every word
    keys = [np.zeros(0, dtype=np.uint64)]
    if len(hashes) >= n:
        grams = _combine(hashes, n)  # the n-gram starting at every position
        doc = doc_of[: len(grams)]
        inside = np.arange(len(grams)) + n <= ends[doc]  # the n-gram ends inside its document
        keys.append((doc[inside].astype(np.uint64) << np.uint64(32)) | grams[inside].astype(np.uint64))
    for d in np.flatnonzero((lengths > 0) & (lengths < n)):  # short documents: all their words, one shingle
        gram = _combine(hashes[ends[d] - lengths[d]:ends[d]], int(lengths[d]))[0]
        keys.append(np.array([(int(d) << 32) | int(gram)], dtype=np.uint64))
    keys = _sorted_unique(np.concatenate(keys))  # by document, then hash
    bounds = np.searchsorted(keys >> np.uint64(32), np.arange(1, len(docs), dtype=np.uint64))
    return np.split((keys & np.uint64(0xFFFFFFFF)).astype(np.uint32), bounds)



def minhash_params(num_perm: int = NUM_PERM, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The seeded hash functions: a in [1, PRIME), b in [0, PRIME), each uint64 of shape (num_perm,)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(1, PRIME, size=num_perm, dtype=np.uint64)
    b = rng.integers(0, PRIME, size=num_perm, dtype=np.uint64)
    return a, b


def minhash_signature(shingles: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """min over shingles x of (a*x + b) mod PRIME, for every hash function: uint32 of shape (num_perm,).

    shingles: uint32 (n_shingles,); a, b: uint64 (num_perm,). No shingles -> all EMPTY_SIGNATURE.
    """
    if len(shingles) == 0:
        return np.full(len(a), EMPTY_SIGNATURE, dtype=np.uint32)
    x = shingles.astype(np.uint64)[:, None]  # (n_shingles, 1), broadcast against (num_perm,)
    return ((a * x + b) % np.uint64(PRIME)).min(axis=0).astype(np.uint32)


def _hash_rows(x: np.ndarray, a: np.ndarray, b: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """(a*x + b) mod PRIME for x of shape (rows, 1), into `out` (rows, num_perm), without a division.

    Since 2^31 = 1 (mod 2^31 - 1), y mod p = (y & p) + (y >> 31) up to one more fold and one subtraction.
    Working in place on a small buffer keeps the data in the CPU cache, which matters more than the
    arithmetic here.
    """
    p = np.uint64(PRIME)
    np.multiply(x, a, out=out)
    out += b
    for _ in range(2):
        np.right_shift(out, np.uint64(31), out=tmp)
        out &= p
        out += tmp
    np.subtract(out, p, out=out, where=out >= p)
    return out


def minhash_signatures(shingle_sets: list[np.ndarray], a: np.ndarray, b: np.ndarray,
                       chunk_rows: int = 2048) -> np.ndarray:
    """Signatures of many documents at once: uint32 of shape (n_docs, num_perm).

    Equal to stacking `minhash_signature` per document. The shingles of consecutive documents go through
    one (chunk_rows, num_perm) buffer and `np.minimum.reduceat` takes each document's minimum.
    """
    n_docs, num_perm = len(shingle_sets), len(a)
    signatures = np.full((n_docs, num_perm), EMPTY_SIGNATURE, dtype=np.uint32)
    sizes = np.fromiter(map(len, shingle_sets), dtype=np.int64, count=n_docs)
    if sizes.sum() == 0:
        return signatures
    x = np.concatenate(shingle_sets).astype(np.uint64)[:, None]
    starts = np.concatenate([[0], np.cumsum(sizes)])
    out = np.empty((max(chunk_rows, int(sizes.max())), num_perm), dtype=np.uint64)
    tmp = np.empty_like(out)
    first = 0
    while first < n_docs:  # documents first..last-1 fill the buffer (at least one document)
        last = max(first + 1, int(np.searchsorted(starts, starts[first] + chunk_rows, side="right")) - 1)
        rows = slice(starts[first], starts[last])
        hashed = _hash_rows(x[rows], a, b, out[: rows.stop - rows.start], tmp[: rows.stop - rows.start])
        docs = first + np.flatnonzero(sizes[first:last])  # documents with shingles (reduceat needs rows)
        if len(docs):
            signatures[docs] = np.minimum.reduceat(hashed, starts[docs] - starts[first], axis=0)
        first = last
    return signatures


def candidate_probability(s: float | np.ndarray, bands: int = BANDS, rows: int = ROWS) -> float | np.ndarray:
    """P(a pair with Jaccard s shares at least one band) = 1 - (1 - s^rows)^bands."""
    return 1.0 - (1.0 - np.asarray(s, dtype=float) ** rows) ** bands


def _pairs_within_groups(members: np.ndarray, group_starts: np.ndarray) -> np.ndarray:
    """All (i, j) pairs inside each group of `members` (groups are runs starting at group_starts)."""
    sizes = np.diff(np.append(group_starts, len(members)))
    pairs = [np.stack([members[group_starts[sizes == 2]], members[group_starts[sizes == 2] + 1]], axis=1)]
    for start, size in zip(group_starts[sizes > 2], sizes[sizes > 2]):  # rare: buckets of 3 or more
        i, j = np.triu_indices(size, k=1)
        pairs.append(np.stack([members[start + i], members[start + j]], axis=1))
    return np.concatenate(pairs)


def lsh_candidates(signatures: np.ndarray, bands: int = BANDS, rows: int = ROWS) -> np.ndarray:
    """All pairs (i, j), i < j, whose signatures agree on every row of at least one band.

    signatures: (n_docs, bands*rows). Returns int64 (n_pairs, 2), sorted, without repeats. Documents
    without shingles (EMPTY_SIGNATURE) are never candidates.
    """
    n_docs, num_perm = signatures.shape
    if bands * rows != num_perm:
        raise ValueError(f"bands x rows = {bands} x {rows} = {bands * rows}, but signatures have {num_perm} values")
    live = np.flatnonzero(signatures[:, 0] != EMPTY_SIGNATURE)
    pairs = [np.zeros((0, 2), dtype=np.int64)]
    for band in range(bands):
        block = np.ascontiguousarray(signatures[live, band * rows:(band + 1) * rows])
        keys = block.view(np.dtype((np.void, block.dtype.itemsize * rows))).ravel()  # the band as one key
        order = np.argsort(keys, kind="stable")  # equal keys (a bucket) end up next to each other
        same_as_next = keys[order[1:]] == keys[order[:-1]]
        in_bucket = np.zeros(len(order), dtype=bool)
        in_bucket[1:] |= same_as_next
        in_bucket[:-1] |= same_as_next
        members = live[order[in_bucket]]
        bucket_starts = np.flatnonzero(np.concatenate([[True], ~same_as_next])[in_bucket])
        pairs.append(_pairs_within_groups(members, bucket_starts))
    pairs = np.sort(np.concatenate(pairs).astype(np.int64), axis=1)  # i < j
    codes = _sorted_unique(pairs[:, 0] * n_docs + pairs[:, 1])  # a pair found in several bands counts once
    return np.stack([codes // max(1, n_docs), codes % max(1, n_docs)], axis=1)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """|A & B| / |A | B| for two sorted arrays of unique shingle hashes (0.0 if both are empty)."""
    union = len(a) + len(b)
    if union == 0:
        return 0.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (union - inter)


class UnionFind:
    """Disjoint sets over 0..n-1 with path halving; `find` returns a set's smallest member as its root."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, x: int, y: int) -> None:
        rx, ry = self.find(x), self.find(y)
        if rx != ry:
            self.parent[max(rx, ry)] = min(rx, ry)  # the smaller index stays the root: "keep the first"


def clusters_from_pairs(n: int, pairs) -> list[list[int]]:
    """Connected components with at least two members, each sorted, ordered by first member."""
    sets = UnionFind(n)
    for i, j in pairs:
        sets.union(int(i), int(j))
    groups: dict[int, list[int]] = {}
    for x in range(n):
        groups.setdefault(sets.find(x), []).append(x)
    return [g for _, g in sorted(groups.items()) if len(g) > 1]


@dataclass
class NearDuplicates:
    """What near-deduplication found: candidate pairs, those verified, and the clusters they form."""

    candidates: np.ndarray  # (n_candidates, 2)
    verified: list[tuple[int, int, float]]  # (i, j, Jaccard) for candidates at or above the threshold
    clusters: list[list[int]]
    duplicate_of: list[int | None]  # for each document: its cluster's first member, or None if it is kept


def near_duplicates(texts: list[str], threshold: float = 0.7, num_perm: int = NUM_PERM, bands: int = BANDS,
                    rows: int = ROWS, n: int = SHINGLE, seed: int = 1) -> NearDuplicates:
    """Stage 9: MinHash + LSH candidates, verified by true Jaccard >= threshold, clustered transitively."""
    sets = shingle_sets([dedup_words(t) for t in texts], n)
    a, b = minhash_params(num_perm, seed)
    candidates = lsh_candidates(minhash_signatures(sets, a, b), bands, rows)
    verified = []
    for i, j in candidates.tolist():
        s = jaccard(sets[i], sets[j])
        if s >= threshold:
            verified.append((i, j, s))
    clusters = clusters_from_pairs(len(texts), [(i, j) for i, j, _ in verified])
    duplicate_of: list[int | None] = [None] * len(texts)
    for cluster in clusters:
        for member in cluster[1:]:
            duplicate_of[member] = cluster[0]
    return NearDuplicates(candidates, verified, clusters, duplicate_of)


# ----------------------------------------------------------------------------------------------------
# 11. Domain mixing: after cleaning, decide how much of each domain the model sees. A domain with
#     little data but a high weight is repeated (upsampled) for several epochs.

def mix_domains(domains: list[str], sizes: list[int], weights: dict[str, float], total: int | None = None,
                seed: int = 0) -> np.ndarray:
    """How many times to use each document so domain d gets about weights[d] of `total` bytes.

    domains, sizes: one entry per document. total defaults to the bytes available. Each domain is used
    for whole epochs (every document the same number of times), then a seeded random subset of its
    documents once more for the fraction left. Returns int64 repeats of shape (n_docs,).
    """
    if len(domains) != len(sizes):
        raise ValueError(f"{len(domains)} domains but {len(sizes)} sizes")
    if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError(f"weights must be >= 0 and not all 0, got {weights}")
    sizes_arr, domains_arr = np.asarray(sizes, dtype=np.int64), np.asarray(domains)
    total = int(sizes_arr.sum()) if total is None else total
    norm = sum(weights.values())
    repeats = np.zeros(len(sizes), dtype=np.int64)
    rng = np.random.default_rng(seed)
    for domain, weight in sorted(weights.items()):
        members = np.flatnonzero(domains_arr == domain)
        have = int(sizes_arr[members].sum())
        if have == 0 or weight == 0:
            continue
        target = total * weight / norm
        epochs = int(target // have)
        repeats[members] = epochs
        left = target - epochs * have
        order = rng.permutation(members)
        extra = order[np.cumsum(sizes_arr[order]) <= left]  # add documents while they fit
        repeats[extra] += 1
    return repeats


# ----------------------------------------------------------------------------------------------------
# 12. The whole pipeline, and how well each stage does against the crawl's labels.

STAGES = ("extract", "language", "gopher_quality", "gopher_repetition", "c4", "toxicity", "pii", "exact_dedup",
          "near_dedup")


@dataclass
class Document:
    """One page's way through the pipeline: where it was dropped and why, or the text that was kept."""

    index: int
    text: str = ""  # the kept text (after C4's line filter and PII masking)
    raw_bytes: int = 0
    text_bytes: int = 0  # UTF-8 bytes of the extracted text, before C4's line filter
    dropped_at: str | None = None
    reasons: list[str] = field(default_factory=list)
    pii: dict[str, int] = field(default_factory=dict)
    pii_found: list[tuple[str, str]] = field(default_factory=list)
    duplicate_of: int | None = None

    @property
    def kept(self) -> bool:
        return self.dropped_at is None


def _drop(doc: Document, stage: str, reasons: list[str]) -> Document:
    doc.dropped_at, doc.reasons = stage, reasons
    return doc


def clean_page(index: int, raw: bytes, identifier: LanguageIdentifier | None = None,
               min_toxic_hits: int = 1) -> Document:
    """The per-page stages, in order; the first stage with a reason drops the page."""
    identifier = identifier or default_identifier()
    extracted = extract_text(raw)
    text = extracted.text
    doc = Document(index, raw_bytes=len(raw), text_bytes=len(text.encode("utf-8")))
    filters = [("extract", lambda _: extracted.reasons),
               ("language", lambda t: language_reasons(t, identifier)),
               ("gopher_quality", gopher_quality_reasons),
               ("gopher_repetition", gopher_repetition_reasons)]
    for stage, reasons_of in filters:
        reasons = reasons_of(text)
        if reasons:
            return _drop(doc, stage, reasons)
    text, reasons = c4_clean(text)  # C4 changes the text: only sentence-like lines stay
    if reasons:
        return _drop(doc, "c4", reasons)
    reasons = toxicity_reasons(text, min_hits=min_toxic_hits)
    if reasons:
        return _drop(doc, "toxicity", reasons)
    doc.pii_found = find_pii(text)
    doc.text, doc.pii = mask_pii(text)
    return doc


def deduplicate(docs: list[Document], near_threshold: float = 0.7) -> None:
    """The corpus-level stages: exact, then near duplicates of kept pages are dropped (first copy stays)."""
    kept = [d for d in docs if d.kept]
    for doc, first in zip(kept, exact_duplicate_of([d.text for d in kept])):
        if first is not None:
            _drop(doc, "exact_dedup", ["exact_duplicate"]).duplicate_of = kept[first].index
    kept = [d for d in docs if d.kept]
    for doc, first in zip(kept, near_duplicates([d.text for d in kept], threshold=near_threshold).duplicate_of):
        if first is not None:
            _drop(doc, "near_dedup", ["near_duplicate"]).duplicate_of = kept[first].index


def clean_crawl(pages: list[bytes], identifier: LanguageIdentifier | None = None, min_toxic_hits: int = 1,
                near_threshold: float = 0.7, progress: bool = False) -> list[Document]:
    """Run every stage over the pages (raw bytes): one `Document` per page says what became of it."""
    if progress:
        from tqdm.auto import tqdm
        pages = tqdm(pages, desc="cleaning", unit="page")
    docs = [clean_page(i, raw, identifier, min_toxic_hits) for i, raw in enumerate(pages)]
    deduplicate(docs, near_threshold)
    return docs


# Which defects each stage is meant to catch (for recall). Precision counts any defect as a fair catch.
STAGE_TARGETS = {
    "extract": {"not_text", "boilerplate"},
    "language": {"foreign", "gibberish"},
    "gopher_quality": {"low_quality", "gibberish", "boilerplate", "spam"},
    "gopher_repetition": {"spam", "low_quality"},
    "c4": {"low_quality", "boilerplate", "spam"},
    "toxicity": {"toxic"},
    "exact_dedup": {"exact_dup"},
    "near_dedup": {"near_dup", "exact_dup"},
}


@dataclass
class StageScore:
    """How one stage did on the pages that reached it."""

    stage: str
    reached: int  # pages that got this far
    removed: int
    good_removed: int  # false positives: pages with no defect
    targets: int  # reached pages with a defect this stage is meant to catch
    targets_removed: int

    @property
    def precision(self) -> float:
        return 1.0 - self.good_removed / self.removed if self.removed else float("nan")

    @property
    def recall(self) -> float:
        return self.targets_removed / self.targets if self.targets else float("nan")


def stage_scores(docs: list[Document], records) -> list[StageScore]:
    """Precision (removed pages that had some defect) and recall (of the stage's target defects) per stage,
    each measured on the pages that reached the stage. `records` are the crawl's `CrawlRecord`s."""
    scores, alive = [], list(zip(docs, records))
    for stage, targets in STAGE_TARGETS.items():
        removed = [(d, r) for d, r in alive if d.dropped_at == stage]
        scores.append(StageScore(stage, len(alive), len(removed), sum(r.is_good for _, r in removed),
                                 sum(r.defect in targets for _, r in alive),
                                 sum(r.defect in targets for _, r in removed)))
        alive = [(d, r) for d, r in alive if d.dropped_at != stage]
    return scores


def where_caught(docs: list[Document], records) -> dict[str, Counter]:
    """For each defect ("" = good pages): how many pages each stage removed, and how many were kept."""
    table: dict[str, Counter] = {}
    for doc, record in zip(docs, records):
        table.setdefault(record.defect, Counter())[doc.dropped_at or "kept"] += 1
    return table


def pii_scores(docs: list[Document], records) -> dict[str, tuple[int, int, int]]:
    """Per PII kind, over the kept pages: (planted, found, found that were planted)."""
    result = {kind: [0, 0, 0] for kind in PII_PLACEHOLDERS}
    for doc, record in zip(docs, records):
        if not doc.kept:
            continue
        planted = Counter(record.pii)
        for kind, value in record.pii:
            result[kind][0] += 1
        for kind, value in doc.pii_found:
            result[kind][1] += 1
            if planted[(kind, value)] > 0:
                planted[(kind, value)] -= 1
                result[kind][2] += 1
    return {kind: tuple(v) for kind, v in result.items()}
