"""The course's toolchain: how notebooks are marked, released to students and graded.

    roles           markers (# EXERCISE:, solution blocks, checks, hidden checks), Exercise, each cell's Role
    notebook_files  read a notebook with a clear error, write it byte-stable, its chapter id
    release         solutions/ -> notebooks/ as named steps (stub answers, drop hidden checks, clear state)
    grade           find submissions, tell their chapter, grade each one, write reports (`grade()`)
    merge           the notebook the grader replays: solution + the student's exercise cells, by id
    kernel_setup    runs inside the graded kernel: memory limit, per-cell output cap
    run             replay a notebook with nbval in a subprocess, within time limits (`Limits`)
    plugin          the pytest plugin of that run: one result per cell, dead-kernel detection
    score           cell results -> exercise status, points, message, hint
    report          the report's shape, Markdown feedback, terminal summary, gradebook.csv
    assets          rebuild the computed files in assets/ (`python -m course_lib build-assets`)

Nothing is imported here: the graded kernel imports `kernel_setup` and must stay light.
"""
