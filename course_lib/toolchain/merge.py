"""The notebook the grader replays: the solution notebook with the student's exercise cells spliced in.

nbval compares a notebook only with the outputs stored in that same notebook, so everything but the
exercise cells (checks, hidden checks, their stored reference outputs, the chapter's own code) comes from
solutions/, and each exercise cell's source comes from the submission's cell with the same exercise id.
A grader's cell that sets the kernel's limits goes first (see kernel_setup.py), and every cell carries
its index in the solution notebook so the plugin's results can be mapped back to it.

The merge also reads the submission for the instructor: answers that use course_lib's reference (which
the exercise asks students to write), touch the checkers or reach for introspection are flagged, never
failed. These static flags only read names; what the code really calls is watched at run time
(verdicts.runtime_flags), however it reaches the reference.
"""

from __future__ import annotations

import ast
import copy
import re

import nbformat

from .kernel_setup import cell_source
from .report import ExerciseResult, ExerciseStatus
from .roles import CellRole, Role, exercise_of
from .run import Limits

CELL_KEY = "course_grade"  # the metadata key plugin.py reads each cell's index from
SETUP_INDEX = -1
NBVAL_MARKER_RE = re.compile(r"^\s*#\s*(NBVAL_\w+|PYTEST_VALIDATE_IGNORE_OUTPUT)\s*$", re.MULTILINE)
# A name with one of these parts touches the checkers or the grader ("grading" and "grading_plugin" are
# the toolchain's former module names).
CHECKER_NAMES = {"checks", "check", "run_cases", "CheckFailed", "grading", "grading_plugin", "toolchain", "report", "fail"}
# Ways to reach a checker, the reference or IPython without naming them: an exercise never needs these.
INTROSPECTION = {"importlib", "sys.modules", "globals", "builtins", "__builtins__", "get_ipython", "setattr",
                 "__import__", "input_transformers_cleanup", "input_transformers_post", "ast_transformers", "gc"}


def _bound_names(tree: ast.AST) -> set[str]:
    """Names the code binds itself (assignments, parameters, loop targets, defs, imports not from course_lib)."""
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)) and not (getattr(node, "module", None) or "").startswith("course_lib"):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names if not a.name.startswith("course_lib")}
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return bound


def _introspection(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in INTROSPECTION:
            found.add(node.id)
        elif isinstance(node, ast.Attribute) and node.attr in INTROSPECTION | {"modules"}:
            base = node.value.id if isinstance(node.value, ast.Name) else ""
            name = f"{base}.{node.attr}" if base else node.attr
            if name in INTROSPECTION or node.attr in INTROSPECTION - {"setattr"}:
                found.add(name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            found |= {n.split(".")[0] for n in names if n.split(".")[0] in INTROSPECTION}
    return found


def _course_lib_names(tree: ast.AST, aliases: set[str]) -> set[str]:
    """Names from course_lib that code refers to: imports, `alias.attr` and bare imported names.

    An alias the code binds itself (a local variable `check` or `stories`) is the code's own name, not
    course_lib's.
    """
    aliases = aliases - _bound_names(tree)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("course_lib"):
            names |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("course_lib")}
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            names.add(f"{node.value.id}.{node.attr}")
        elif isinstance(node, ast.Name) and node.id in aliases:
            names.add(node.id)
    return names


def course_lib_aliases(solution) -> set[str]:
    """Every name the solution notebook binds to something imported from course_lib."""
    aliases = set()
    for cell in solution.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("course_lib"):
                aliases |= {a.asname or a.name for a in node.names}
            elif isinstance(node, ast.Import):
                aliases |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name.startswith("course_lib")}
    return aliases


def flags_for(student_source: str, solution_source: str, aliases: set[str]) -> list[str]:
    """Flags for the instructor (never a failure): calling the reference, touching the checkers."""
    try:
        student_tree, solution_tree = ast.parse(student_source), ast.parse(solution_source)
    except SyntaxError:
        return []
    student, solution = _course_lib_names(student_tree, aliases), _course_lib_names(solution_tree, aliases)
    flags = []
    extra = sorted(student - solution)
    touching = [n for n in extra if set(re.split(r"[.]", n)) & CHECKER_NAMES]
    if touching:
        flags.append(f"touches the checkers: {', '.join(touching)}")
    calls = [n for n in extra if n not in touching]
    if calls:
        flags.append(f"uses course_lib's {', '.join(calls)}, which the solution does not: "
                     "the exercise asks you to write this yourself")
    reaching = sorted(_introspection(student_tree) - _introspection(solution_tree))
    if reaching:
        flags.append(f"uses {', '.join(reaching)}, which an exercise never needs (a way to reach the checkers "
                     "or the reference without naming them)")
    if NBVAL_MARKER_RE.search(student_source):
        flags.append("contains nbval markers (removed before grading)")
    return flags


def setup_cell(limits: Limits):
    cell = nbformat.v4.new_code_cell(cell_source(limits.memory_mb, limits.max_output))
    cell.metadata[CELL_KEY] = {"index": SETUP_INDEX}
    return cell


def indexed(solution, limits: Limits):
    """The solution notebook as the grader replays it itself: every cell numbered, the setup cell first."""
    nb = copy.deepcopy(solution)
    for index, cell in enumerate(nb.cells):
        cell.metadata[CELL_KEY] = {"index": index}
    nb.cells.insert(0, setup_cell(limits))
    return nb


def _answers(submission) -> dict[str, list]:
    """The submission's exercise cells by exercise id, in order (a doubled cell gives two)."""
    answers: dict[str, list] = {}
    for cell in submission.cells:
        exercise = exercise_of(cell)
        if exercise:
            answers.setdefault(exercise.id, []).append(cell)
    return answers


def merge(solution, roles: list[CellRole], submission, limits: Limits, results: dict[str, ExerciseResult],
          skip: set[str]):
    """The solution notebook (whose cells have `roles`) with the submission's exercise cells spliced in.

    Returns a new notebook and fills in `results` (missing exercises, duplicates, flags). Exercises in
    `skip` are replaced by a cell that raises (they crashed the kernel in an earlier attempt).
    """
    merged = copy.deepcopy(solution)
    aliases = course_lib_aliases(solution)
    answers = _answers(submission)
    for index, (cell, (role, owner)) in enumerate(zip(merged.cells, roles)):
        cell.metadata[CELL_KEY] = {"index": index}
        if role is not Role.EXERCISE:
            continue
        result = results[owner]
        copies = answers.get(owner, [])
        cell.outputs, cell.execution_count = [], None
        if not copies:
            result.status = ExerciseStatus.MISSING
            cell.source = f'raise NotImplementedError("exercise {owner} is missing from the submission")'
            continue
        if len(copies) > 1:
            result.warnings.append(f"the exercise cell appears {len(copies)} times; the last one was graded")
        source = copies[-1].get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        result.flags = flags_for(source, cell.source, aliases)
        source = NBVAL_MARKER_RE.sub("# (nbval marker removed by the grader)", source)
        if owner in skip:
            source = f'raise RuntimeError("exercise {owner} was not run again: it crashed the kernel")'
        cell.source = source
    merged.cells.insert(0, setup_cell(limits))
    return merged
