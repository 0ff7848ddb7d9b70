"""What a page of the crawl is, and what is wrong with it: the ground truth a cleaning pipeline is judged
against.

Every page belongs to one site type (DOMAINS) and has at most one defect (DEFECT_SHARES, the share of
pages with each; the rest are good). A `CrawlRecord` carries the page's URL and raw bytes together with
these labels, the true main text, the PII planted in it and the traps laid for the filters.
"""

from __future__ import annotations

from dataclasses import dataclass

DOMAINS = {"stories": 0.50, "encyclopedia": 0.20, "forum": 0.20, "code": 0.10}
DEFECT_SHARES = {
    "boilerplate": 0.04,  # chrome only, no content ("Please enable JavaScript")
    "spam": 0.05,  # SEO articles, keyword stuffing, repeated lines, link farms
    "gibberish": 0.03,  # random letters, keyboard mashing, word salad
    "foreign": 0.06,  # other languages and scripts
    "toxic": 0.04,  # placeholder insults
    "low_quality": 0.08,  # too short, all caps, lorem ipsum, mostly bullets
    "exact_dup": 0.06,  # the same content as an earlier page, at another URL
    "near_dup": 0.06,  # an earlier page with small edits
    "not_text": 0.01,  # empty responses and binary files
}
DEFECTS = tuple(DEFECT_SHARES)
PII_KINDS = ("email", "phone", "ip")  # PII is not a defect: it is masked, not dropped


@dataclass(frozen=True)
class CrawlRecord:
    """One crawled page and its ground truth.

    `defect` is "" for a good page, else one of DEFECTS (`detail` says more: "caps", "fr", ...).
    `text` is the page's main content as a perfect extractor would return it: one line per block,
    whitespace collapsed. `pii` lists every (kind, value) planted in the text. `dup_of` is the index of
    the original page for exact and near duplicates. `quirks` lists what the HTML does to make extraction
    harder ("broken_html", "encoding:cp1252", ...).
    """

    index: int
    url: str
    html: bytes
    domain: str
    defect: str = ""
    detail: str = ""
    text: str = ""
    lang: str = "en"
    pii: tuple[tuple[str, str], ...] = ()
    dup_of: int | None = None
    quirks: tuple[str, ...] = ()
    traps: tuple[str, ...] = ()

    @property
    def is_good(self) -> bool:
        return self.defect == ""

    @property
    def labels(self) -> frozenset[str]:
        """Everything true of the page: its defect, "pii" if it has any, and its quirks."""
        found = {self.defect} if self.defect else set()
        return frozenset(found | ({"pii"} if self.pii else set()) | set(self.quirks))
