"""A small labeled "web crawl": raw HTML pages with the ground truth a cleaning pipeline is judged against.

Common Crawl gives you bytes and a URL; nobody tells you which pages are spam. Here every page is made by
us, so we know: each record carries its URL, its raw HTML bytes and labels saying what is wrong with it.

A page is drawn in three steps, each from its own seeded `random.Random`:
  1. what it is: a site type (`domain`) and a defect (or none) with the shares in DEFECT_SHARES;
  2. its main content, as a list of blocks (heading, paragraph, list item, code): a story from
     `course_lib.stories`, or an encyclopedia entry, a forum thread, a code snippet written here;
  3. the page around it: nav, cookie banner, ads, footer, scripts and styles, sometimes broken HTML or an
     unusual encoding (`quirks`), which a good extractor must survive without losing the content.

Defects (exactly one per bad page): boilerplate-only pages, keyword spam, gibberish, other languages and
scripts, toxic content (made-up placeholder words stand in for real slurs), exact and near duplicates of
an earlier page, low quality (too short, all caps, lorem ipsum, mostly bullets), and payloads that are not
text at all. PII (emails, phone numbers, IPv4 addresses) is not a defect: it should be masked, not dropped,
so it is listed per page in `pii`. A few good pages carry traps (an ISBN that looks like a phone number, a
moderator quoting a blocked word) so that every filter has something to get wrong.

Determinism: every random choice comes from `random.Random(f"crawl/{seed}/{index}/{purpose}")`. Seeding with
a string hashes it with SHA-512, so the same seed gives the same crawl on every platform and Python version;
no global random state is touched.

The modules, in the order a page is made:

    labels               DOMAINS, DEFECT_SHARES and `CrawlRecord`: what a page is and its ground truth
    blocks               content as (tag, text) blocks -> HTML and the true text; shared helpers
    story_pages          domain 1: stories from `course_lib.stories`
    encyclopedia_pages   domain 2: entries about made-up towns, rivers, birds and inventors
    forum_pages          domain 3: hobby questions and their replies
    code_pages           domain 4: short Python tutorials with a code block
    pii                  emails, phone numbers and IPv4 addresses planted into good pages
    defect_pages         spam, gibberish, toxic, low-quality, boilerplate, not-text and near-duplicate content
    foreign_pages        French, German, Spanish, Russian and Greek pages
    chrome               the page around the content (nav, cookie banner, ads, footer)
    quirks               broken HTML, unusual encodings, typographic quotes
    assembly             `crawl_record` and `crawl`: the three steps above, seeded per page

The crawl's toxic pages use the cleaning side's vocabulary (`course_lib.data_cleaning.toxicity.BLOCKLIST`,
re-exported here as BLOCKLIST); the cleaning code never imports the crawl. Everything a notebook, test or
benchmark uses is re-exported here: `from course_lib import crawl as cr; cr.crawl(1000)`.
"""

from course_lib.crawl.assembly import (
    BROKEN_HTML_SHARE,
    DUP_WINDOW,
    ODD_ENCODING_SHARE,
    PII_SHARE,
    content_blocks,
    crawl,
    crawl_record,
    page_kind,
)
from course_lib.crawl.blocks import Block, blocks_to_html, blocks_to_text, made_up_name, sentences_to_paragraphs
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
from course_lib.crawl.foreign_pages import FOREIGN, foreign_blocks
from course_lib.crawl.forum_pages import forum_blocks
from course_lib.crawl.labels import DEFECT_SHARES, DEFECTS, DOMAINS, PII_KINDS, CrawlRecord
from course_lib.crawl.pii import add_pii, fake_email, fake_ipv4, fake_phone
from course_lib.crawl.quirks import ENCODINGS, break_html, encode_page, typographic
from course_lib.crawl.story_pages import story_blocks
from course_lib.data_cleaning.toxicity import BLOCKLIST

__all__ = [
    # labels
    "DOMAINS", "DEFECT_SHARES", "DEFECTS", "PII_KINDS", "CrawlRecord",
    # blocks
    "Block", "blocks_to_text", "blocks_to_html", "sentences_to_paragraphs", "made_up_name",
    # content by domain
    "story_blocks", "encyclopedia_blocks", "forum_blocks", "code_blocks",
    # pii
    "add_pii", "fake_email", "fake_phone", "fake_ipv4",
    # defects
    "spam_blocks", "gibberish_blocks", "FOREIGN", "foreign_blocks", "BLOCKLIST", "toxic_blocks",
    "low_quality_blocks", "BOILERPLATE_MAIN", "not_text_payload", "near_duplicate",
    # the page around the content
    "SITES", "wrap_page", "break_html", "ENCODINGS", "encode_page", "typographic",
    # assembly
    "PII_SHARE", "BROKEN_HTML_SHARE", "ODD_ENCODING_SHARE", "DUP_WINDOW", "page_kind", "content_blocks",
    "crawl_record", "crawl",
]
