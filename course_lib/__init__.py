"""course_lib: the shared code of the course.

One module per chapter (the reference implementation of what that chapter teaches, which later chapters
reuse) plus a little plumbing:

Chapters:
    stories        the story corpus: a generator with exact log-probabilities, its scorer, the floor
    welcome        0  the warm-up exercises
    tokenizer      1  byte-level BPE (train, encode, decode, save, to Hugging Face)
    ngram, model, training, sampling
                   2  count-based models, a small GPT, its training loop, sampling
    evaluation, tasks
                   3  perplexity, bits per byte, multiple choice, story benchmarks, contamination
    crawl, data_cleaning
                   4  a labeled synthetic web crawl and the pipeline that cleans it

Plumbing:
    utils          seeding, device choice, paths, plotting style
    widgets        interactive explorers that degrade to static output
    checks         the checkers that the notebooks' check cells call (one file per chapter)
    notebooks      how exercise, check and hidden-check cells are marked in a notebook
    release        solutions/ -> notebooks/ (the student release)
    grading        grade submissions against solutions/ with nbval (grading_plugin records each cell)

Run `python -m course_lib --help` for the command line.
"""

__version__ = "0.1.0"
