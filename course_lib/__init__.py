"""course_lib: the shared code of the course.

One module per chapter (the reference implementation of what that chapter teaches, which later chapters
reuse) plus a little plumbing:

    utils      seeding, device choice, paths, plotting style
    stories    the story corpus: a generator with exact log-probabilities, and its scorer
    checks     the checkers that the notebooks' check cells call
    notebooks  how exercise, check and hidden-check cells are marked in a notebook
    release    solutions/ -> notebooks/ (the student release)
    grading    grade submissions against solutions/ with nbval

Run `python -m course_lib --help` for the command line.
"""

__version__ = "0.1.0"
