"""Chapter 4: from raw crawled bytes to pretraining text, one small stage at a time.

The stages, in the order the pipeline runs them (each one is a function you can call on its own), and
the module that holds each:

    extract      extract_text          bytes -> main text (decode, drop markup and boilerplate)
    language     language_reasons      keep English, drop other languages and text no language fits
    quality      gopher_quality_reasons     Gopher's document rules (Rae et al. 2021): length, symbols,
                                            stop words...
    repetition   gopher_repetition_reasons  Gopher's repetition rules: duplicate lines, paragraphs, n-grams
    c4           c4_clean              C4's line rules (Raffel et al. 2020): keep sentence-like lines,
                                       drop pages
    toxicity     toxicity_reasons      a blocklist, like C4's "bad words" list (BLOCKLIST lives here)
    pii          mask_pii              emails, phone numbers, IPv4 -> placeholders (text kept, counts returned)
    dedup        exact_duplicate_of    the same normalized text seen before
                 near_duplicates       MinHash + LSH candidates, verified by true Jaccard, clustered with
                                       union-find
    minhash      shingle_sets, minhash_signatures, lsh_candidates: the machinery behind near_duplicates
    mixing       mix_domains           how often each kept document is used, given target weights per domain
    quality_classifier                 a learned filter: hashed word uni/bigrams, logistic regression in torch
                                       (imported on its own, `from course_lib.data_cleaning import
                                       quality_classifier`, so that the rule-based stages need no torch)
    pipeline     clean_crawl           all of the above over a crawl; stage_scores, where_caught and
                                       pii_scores judge each stage against the crawl's labels;
                 compare_training_data judges the cleaning as FineWeb did: train a small GPT on the raw
                                       and on the cleaned text, same budget and seed, compare bits per byte

Every filter returns the list of reasons it rejected a document (empty: keep), so a reader can always
ask "why did this page go?". Bad input (malformed HTML, binary bytes, empty or huge pages) never raises:
it comes back with a reason. `clean_crawl` runs them all and `stage_scores` scores every stage against
the labels of `course_lib.crawl`. Data flows one way: the crawl may use this package's vocabulary (its
toxic pages use BLOCKLIST), but nothing here imports the crawl.

Everything public is re-exported here, so `from course_lib import data_cleaning as dc; dc.mask_pii(...)`
works without knowing which module holds what.
"""

from course_lib.data_cleaning.c4 import POLICY_PHRASES, TERMINAL_PUNCTUATION, c4_clean, c4_keep_line
from course_lib.data_cleaning.dedup import (
    NearDuplicates,
    UnionFind,
    clusters_from_pairs,
    dedup_key,
    exact_duplicate_of,
    jaccard,
    near_duplicates,
)
from course_lib.data_cleaning.extract import (
    BLOCK_TAGS,
    BOILERPLATE_HINTS,
    MAX_PAGE_BYTES,
    SKIP_TAGS,
    VOID_TAGS,
    Extracted,
    MainTextParser,
    decode_html,
    extract_text,
    html_to_text,
    is_boilerplate,
    looks_binary,
)
from course_lib.data_cleaning.language import (
    LANGID_CHARS,
    LANGUAGE_SAMPLES,
    MAX_BITS_PER_CHAR,
    CharTrigramModel,
    LanguageIdentifier,
    default_identifier,
    language_reasons,
)
from course_lib.data_cleaning.minhash import (
    BANDS,
    EMPTY_SIGNATURE,
    NUM_PERM,
    PRIME,
    ROWS,
    SHINGLE,
    candidate_probability,
    dedup_words,
    lsh_candidates,
    minhash_params,
    minhash_signature,
    minhash_signatures,
    shingle_hashes,
    shingle_sets,
    word_hashes,
)
from course_lib.data_cleaning.mixing import mix_domains
from course_lib.data_cleaning.pii import (
    EMAIL_RE,
    IPV4_RE,
    PHONE_RE,
    PII_PATTERNS,
    PII_PLACEHOLDERS,
    find_pii,
    mask_pii,
)
from course_lib.data_cleaning.pipeline import (
    SMALL_GPT,
    SMALL_TRAINING,
    STAGE_TARGETS,
    STAGES,
    Document,
    LabeledPage,
    StageScore,
    clean_crawl,
    clean_page,
    compare_training_data,
    deduplicate,
    pii_scores,
    stage_scores,
    train_small_gpt,
    where_caught,
)
from course_lib.data_cleaning.quality import BULLETS, ELLIPSES, GOPHER_QUALITY_RULES, STOP_WORDS, gopher_quality_reasons
from course_lib.data_cleaning.repetition import (
    DUP_NGRAM_MAX,
    TOP_NGRAM_MAX,
    duplicate_ngram_char_fraction,
    gopher_repetition_reasons,
    top_ngram_char_fraction,
)
from course_lib.data_cleaning.toxicity import BLOCKLIST, blocklist_hits, toxicity_reasons

__all__ = [
    # extract
    "MAX_PAGE_BYTES", "SKIP_TAGS", "BLOCK_TAGS", "VOID_TAGS", "BOILERPLATE_HINTS", "decode_html", "looks_binary",
    "is_boilerplate", "MainTextParser", "html_to_text", "Extracted", "extract_text",
    # language
    "LANGUAGE_SAMPLES", "MAX_BITS_PER_CHAR", "LANGID_CHARS", "CharTrigramModel", "LanguageIdentifier",
    "default_identifier", "language_reasons",
    # quality
    "STOP_WORDS", "BULLETS", "ELLIPSES", "GOPHER_QUALITY_RULES", "gopher_quality_reasons",
    # repetition
    "TOP_NGRAM_MAX", "DUP_NGRAM_MAX", "top_ngram_char_fraction", "duplicate_ngram_char_fraction",
    "gopher_repetition_reasons",
    # c4
    "TERMINAL_PUNCTUATION", "POLICY_PHRASES", "c4_keep_line", "c4_clean",
    # toxicity
    "BLOCKLIST", "blocklist_hits", "toxicity_reasons",
    # pii
    "PII_PLACEHOLDERS", "EMAIL_RE", "IPV4_RE", "PHONE_RE", "PII_PATTERNS", "find_pii", "mask_pii",
    # minhash
    "PRIME", "EMPTY_SIGNATURE", "NUM_PERM", "BANDS", "ROWS", "SHINGLE", "dedup_words", "word_hashes",
    "shingle_hashes", "shingle_sets", "minhash_params", "minhash_signature", "minhash_signatures",
    "candidate_probability", "lsh_candidates",
    # dedup
    "dedup_key", "exact_duplicate_of", "jaccard", "UnionFind", "clusters_from_pairs", "NearDuplicates",
    "near_duplicates",
    # mixing
    "mix_domains",
    # pipeline
    "STAGES", "Document", "clean_page", "deduplicate", "clean_crawl", "STAGE_TARGETS", "StageScore",
    "LabeledPage", "stage_scores", "where_caught", "pii_scores", "SMALL_GPT", "SMALL_TRAINING", "train_small_gpt",
    "compare_training_data",
]
