"""The course's toolchain: how notebooks are marked, released to students and graded.

    roles           markers (# EXERCISE:, solution blocks, checks, hidden checks), Exercise, each cell's Role
    notebook_files  read a notebook with a clear error, write it byte-stable, its chapter id
    release         solutions/ -> notebooks/ as named steps (stub answers, drop hidden checks, clear state)
    grade           find submissions, tell their chapter, grade each one, write reports (`grade()`)
    merge           the notebook the grader replays: solution + the student's exercise cells, by id
    kernel_setup    runs inside the graded kernel: memory limit, per-cell output cap
    run             replay a notebook with nbval in a subprocess, within time limits (`Limits`)
    sandbox         the bubblewrap sandbox the kernel runs in (nbval and the reference outputs stay outside)
    plugin          the pytest plugin of that run: one result per cell, dead-kernel detection, the sandboxed
                    kernel, the checkers' records taken out of the outputs
    wire            plain data (never pickle) for the student's results, from the kernel to the grader
    verdicts        the reference values of a solution (recorded once, cached) and the verdicts judged outside
    score           cell results -> exercise status, points, message, hint
    report          the report's shape, Markdown feedback, terminal summary, gradebook.csv
    assets          rebuild the computed files in assets/ (`python -m course_lib build-assets`)
    self_grade      the last cell of every released notebook: grade the saved notebook from JupyterLab

Nothing is imported here: the graded kernel imports `kernel_setup` and `wire` and must stay light.
"""
