"""course_lib: the shared code of the course.

One module per chapter (the reference implementation of what that chapter teaches, which later chapters
reuse) plus a little plumbing:

Chapters:
    lm             the core every chapter shares: <|endoftext|>, the model and tokenizer contracts, one
                   windowed scorer of documents, one sampler
    stories        the story corpus: a generator with exact log-probabilities, its scorer, the floor
    welcome        0  the warm-up exercises
    tokenizer      1  byte-level BPE (train, encode, decode, save, to Hugging Face)
    ngram, model, training
                   2  count-based models, a small GPT, its training loop (sampling: lm)
    evaluation, tasks
                   3  perplexity, bits per byte, multiple choice, story benchmarks, contamination
    crawl/, data_cleaning/
                   4  a labeled synthetic web crawl (a file per kind of page) and the pipeline that
                      cleans it (a file per stage)
    scaling        5  FLOPs, the sweep, the three Chinchilla fits
    instructions, sft
                   6  instruction data with exact verifiers; chat format, loss masking, fine-tuning
    preferences, dpo
                   7  a known true reward and preference pairs; DPO, a reward model, best-of-n
    precision, fusion
                   8  number formats, loss scaling, autocast; the roofline, fusion, tiled attention

Plumbing:
    utils          seeding, device choice, paths, plotting style
    widgets        interactive explorers that degrade to static output; token displays
    checks         the checkers that the notebooks' check cells call (one file per chapter)

Toolchain (for instructors; see toolchain/__init__.py for its map):
    toolchain      how exercise, check and hidden-check cells are marked (roles), solutions/ -> notebooks/
                   (release), grading submissions against solutions/ with nbval (grade), and the
                   builders of the shipped assets (assets)

Run `python -m course_lib --help` for the command line.
"""

__version__ = "0.1.0"
