"""Tests of the labeled synthetic crawl (the course_lib.crawl package)."""

import hashlib
from collections import Counter

import pytest

from course_lib import crawl as cr
from course_lib import data_cleaning as dc

N = 1200


@pytest.fixture(scope="module")
def records():
    return cr.crawl(N, seed=0)


def test_same_seed_same_crawl_and_pages_stand_alone(records):
    again = cr.crawl(40, seed=0, start=100)
    assert [r.html for r in again] == [r.html for r in records[100:140]]
    assert cr.crawl_record(7, seed=0) == records[7]
    other = cr.crawl(40, seed=1, start=100)
    assert sum(a.html == b.html for a, b in zip(again, other)) < 5


def test_non_story_pages_are_byte_identical_on_every_platform():
    # random.Random(str) hashes the string with SHA-512, so these bytes must not change across OS or Python.
    pages = [r for r in cr.crawl(120, seed=3) if r.domain != "stories" and r.dup_of is None]
    digest = hashlib.sha256(b"".join(r.html for r in pages)).hexdigest()
    assert len(pages) > 40
    assert digest == GOLDEN_DIGEST, "the crawl generator changed: update GOLDEN_DIGEST only on purpose"


GOLDEN_DIGEST = "8af36e9a7894562e000de1b656591af896467614d0062f26d9fcc367c87ddcd4"


def test_shares_of_domains_and_defects(records):
    defects = Counter(r.defect for r in records)
    for defect, share in cr.DEFECT_SHARES.items():
        assert abs(defects[defect] / N - share) < 0.03, (defect, defects[defect])
    domains = Counter(r.domain for r in records if r.is_good)
    assert set(domains) == set(cr.DOMAINS)
    assert sum(bool(r.pii) for r in records) > 0.05 * N


def test_labels_are_consistent(records):
    for r in records:
        assert r.url.startswith("https://") and ".example/" in r.url
        assert isinstance(r.html, bytes)
        if r.defect in ("exact_dup", "near_dup"):
            original = records[r.dup_of]
            assert r.dup_of < r.index and original.is_good
            if r.defect == "exact_dup":
                assert r.text == original.text
            else:
                assert r.text != original.text
                a, b = dc.shingle_hashes(r.text), dc.shingle_hashes(original.text)
                assert dc.jaccard(a, b) > 0.5
        else:
            assert r.dup_of is None
        for kind, value in r.pii:
            assert kind in cr.PII_KINDS and value in r.text
        if r.defect == "foreign":
            assert r.lang == r.detail and r.lang != "en"
        if r.defect == "toxic":
            assert dc.blocklist_hits(r.text) == int(r.detail) >= 1
        if r.defect == "not_text":
            assert r.text == "" and (r.html == b"" or r.html[:4] in (b"\x89PNG", b"%PDF", b"\x1f\x8b\x08\x00"))
        if r.is_good and "blocked word quoted" not in r.traps:
            assert dc.blocklist_hits(r.text) == 0
        assert r.labels >= ({r.defect} - {""})


def test_mirrors_are_the_same_bytes_at_another_url(records):
    mirrors = [r for r in records if r.detail == "mirror"]
    assert mirrors
    for r in mirrors:
        assert r.html == records[r.dup_of].html and r.url != records[r.dup_of].url


def test_extraction_recovers_the_true_text_of_good_pages(records):
    # Everything the chrome leaves behind (a share bar without class hints) is one known line.
    leftover = "Share Tweet Print this page"
    good = [r for r in records if r.is_good]
    same = sum([line for line in dc.extract_text(r.html).text.split("\n") if line != leftover] == r.text.split("\n")
               for r in good)
    assert same == len(good)


def test_quirky_pages_decode(records):
    quirky = [r for r in records if any(q.startswith("encoding:") for q in r.quirks)]
    assert {q for r in quirky for q in r.quirks if q.startswith("encoding:")} == {
        "encoding:" + e for e in cr.ENCODINGS}
    for r in quirky:
        text, _ = dc.decode_html(r.html)
        assert "\ufffd" not in text and "<html" in text


def test_content_helpers():
    blocks = [("h1", "Title"), ("p", "One  two\nthree."), ("pre", "a = 1\n  b = 2\n"), ("li", "item <x> & y")]
    assert cr.blocks_to_text(blocks) == "Title\nOne two three.\na = 1\nb = 2\nitem <x> & y"
    assert dc.html_to_text(cr.blocks_to_html(blocks)) == cr.blocks_to_text(blocks)
    assert cr.typographic('He said "it\'s fine".') == "He said \u201cit\u2019s fine\u201d."


def test_the_package_exports_the_crawl_function_and_the_filters_blocklist():
    from course_lib.crawl import crawl

    assert callable(crawl) and crawl is cr.assembly.crawl
    assert all(hasattr(cr, name) for name in cr.__all__)
    assert cr.BLOCKLIST is dc.BLOCKLIST  # toxic pages are written with the words the filter blocks


def test_bad_arguments():
    with pytest.raises(ValueError, match="index"):
        cr.crawl_record(-1)
    with pytest.raises(ValueError, match="n must be"):
        cr.crawl(-3)
