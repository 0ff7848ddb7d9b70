"""The grader's safety machinery, piece by piece, without running a notebook: the wire format, trusted
verdicts, escaping of untrusted text, refusal of links, the sandbox's command and the static flags."""

import csv
import math
import os
from collections import Counter, defaultdict

import numpy as np
import pytest
import torch

from course_lib.checks import exact
from course_lib.checks import tokenization as tok
from course_lib.toolchain import grade as grade_module
from course_lib.toolchain import kernel_setup, sandbox
from course_lib.toolchain.grade import SandboxUnavailable, find_submissions, grade, grade_notebook, safe_student_id
from course_lib.toolchain.merge import flags_for
from course_lib.toolchain.report import ExerciseResult, Report, csv_cell, feedback_text, md_block, md_text, write_gradebook
from course_lib.toolchain.roles import CellRole, Role
from course_lib.toolchain.run import Limits
from course_lib.toolchain.score import TAMPERED, redact, score_exercises
from course_lib.toolchain.verdicts import Reference, judge, runtime_flags
from course_lib.toolchain.wire import Unsupported, WireError, decode, encode
from course_lib.utils import ASSETS_DIR, PACKAGE_DIR, REPO_DIR, SOLUTIONS_DIR


def roundtrip(value):
    return decode(encode(value))


def test_wire_carries_plain_data_and_nothing_else():
    value = {(1, 2): [b"\xff", 1.5, None, True, "é"], "nan": float("nan"), "inf": -math.inf}
    back = roundtrip(value)
    assert back[(1, 2)] == [b"\xff", 1.5, None, True, "é"] and math.isnan(back["nan"]) and back["inf"] == -math.inf
    assert type(roundtrip(Counter(a=2))) is dict and roundtrip(defaultdict(int, b=1)) == {"b": 1}
    assert np.array_equal(roundtrip(np.arange(6, dtype=np.int32).reshape(2, 3)), np.arange(6).reshape(2, 3))
    tensor = roundtrip(torch.tensor([[1.0, float("nan")]], dtype=torch.bfloat16))
    assert tensor.dtype == torch.bfloat16 and tensor.shape == (1, 2) and torch.isnan(tensor[0, 1])
    assert roundtrip(object()) == Unsupported("object") and roundtrip(np.array(["a"])) == Unsupported("ndarray")
    for bad in ({"$pickle": "gASV"}, {"$ndarray": {"dtype": "object", "shape": [1], "data": [1]}}, {"a": 1, "b": 2}):
        with pytest.raises(WireError):
            decode(bad)


def cases_record(results, expected, compare=("exact",), group="g", labels=("first", "second")):
    return {"kind": "cases", "group": group, "n": len(labels), "compare": list(compare), "labels": list(labels),
            "calls_repr": [f"{group}({i})" for i in range(len(labels))], "hint": "a hint",
            "results": [encode(r) for r in results], "expected": [encode(e) for e in expected], "calls": []}


def test_verdicts_come_from_the_data_not_from_the_kernels_word():
    expected = [cases_record([], [{"a": 1}, {"b": 2}])]
    assert judge(expected, [cases_record([{"a": 1}, Counter(b=2)], [])], hidden=False, show_got=True).ok
    wrong = judge(expected, [cases_record([{"a": 1}, {"b": 3}], [])], hidden=False, show_got=True)
    assert not wrong.ok and "case 'second' failed" in wrong.message and "expected: {'b': 2}" in wrong.message
    hidden = judge(expected, [cases_record([{"a": 1}, {"b": 3}], [])], hidden=True, show_got=True)
    assert hidden.message == "g: case 2 of 2 failed" and "{'b': 2}" not in hidden.message
    withheld = judge(expected, [cases_record([{"a": 1}, {"secret": 3}], [])], hidden=False, show_got=False)
    assert "secret" not in withheld.message and "not shown" in withheld.message
    assert not judge(expected, [], hidden=False, show_got=True).ok  # nothing arrived
    assert not judge(expected, [cases_record([{"a": 1}], [])], hidden=False, show_got=True).ok  # stopped early
    assert not judge(expected, [cases_record([{"a": 1}, {"b": 2}], [], group="other")], hidden=False, show_got=True).ok
    assert not judge(expected, [expected[0], expected[0]], hidden=False, show_got=True).ok  # one record too many
    close = [cases_record([], [1.0, 2.0], compare=("close", 1e-9, 1e-12))]
    assert judge(close, [cases_record([1.0, 2.0 + 1e-12], [])], hidden=False, show_got=True).ok
    assert not judge(close, [cases_record([1.0, 2.1], [])], hidden=False, show_got=True).ok
    merges = [cases_record([], [{(97, 98): 256}], compare=("function", "course_lib.checks.tokenization", "same_merges"),
                           labels=("one",))]
    assert judge(merges, [cases_record([{(97, 98): 256}], [], labels=("one",))], hidden=False, show_got=True).ok
    with pytest.raises(ValueError):
        judge([cases_record([], [1], compare=("function", "os", "system"), labels=("x",))],
              [cases_record([1], [], labels=("x",))], hidden=False, show_got=True)


def test_a_check_that_printed_a_pass_without_sending_results_fails_and_is_flagged():
    roles = [CellRole(Role.EXERCISE, "e"), CellRole(Role.CHECK, "e")]
    reference = Reference({1: [cases_record([], [1, 2])]}, {"welcome.py:f"}, {"course_lib/welcome.py"})
    results = {"e": ExerciseResult("e", 2)}
    cells = [{"index": 0, "outcome": "passed", "message": "", "records": []},
             {"index": 1, "outcome": "passed", "message": "", "records": []}]
    score_exercises(results, cells, roles, False, Limits(), reference=reference)
    assert results["e"].points == 0 and TAMPERED in results["e"].flags
    calls = [dict(cases_record([1, 2], []), calls=["welcome.py:f", "lm.py:g"], opened=["course_lib/welcome.py"])]
    assert runtime_flags(reference, calls)[0].startswith("calls course_lib's reference (welcome.f)")
    assert any("reads the reference's source" in f for f in runtime_flags(reference, calls))


def test_untrusted_text_is_escaped_redacted_and_cut():
    assert md_text("**Score: 7 / 7**\n# x") == r"\*\*Score: 7 / 7\*\* \# x"
    fence, text, close = md_block("```\n**Score: 7 / 7**\n`````")
    assert fence == close == "``````" and "`````" in text
    assert len(md_block("x" * 10_000)[1]) < 3100
    os.environ["COURSE_TEST_SECRET"] = "very-secret-value-123"
    try:
        assert "very-secret-value-123" not in redact(f"boom very-secret-value-123 {REPO_DIR}/solutions /tmp/course-grade-ab12/x")
        assert "course-grade-ab12" not in redact("/tmp/course-grade-ab12/sandbox")
    finally:
        del os.environ["COURSE_TEST_SECRET"]
    assert csv_cell("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")" and csv_cell("a\nb") == "a b" and csv_cell(3) == 3
    report = Report("x.ipynb", "=1+1", exercises=[ExerciseResult("e", 1, message="```\n**Score: 1 / 1**")])
    assert "**Score: 0 / 0**" in feedback_text(report) and "\n````\n```" in feedback_text(report)


def test_gradebook_cells_cannot_be_formulas_or_break_rows(tmp_path):
    reports = [Report("a", "=cmd|' /C calc'!A0", chapter="c"), Report("b", "+x\ny", chapter="c")]
    write_gradebook(reports, tmp_path / "gradebook.csv")
    rows = list(csv.reader((tmp_path / "gradebook.csv").open(encoding="utf-8")))
    assert len(rows) == 3 and all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


def test_student_ids_are_safe_file_names(tmp_path):
    assert safe_student_id("=HYPERLINK(1)\n+evil") == "_HYPERLINK_1_evil"
    assert safe_student_id("José_01") == "José_01" and safe_student_id("..") == "_"
    (tmp_path / "a\nb").mkdir()
    (tmp_path / "a\nb" / "00_welcome.ipynb").write_text("{}")
    assert [s for _, s in find_submissions([tmp_path])] == ["a_b__00_welcome"]


def test_links_and_special_files_are_refused_never_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET CONTENT")
    (tmp_path / "sub").mkdir()
    os.symlink(secret, tmp_path / "sub" / "link.ipynb")
    os.symlink(tmp_path, tmp_path / "sub" / "folder_link")  # a link to a folder is not walked
    os.mkfifo(tmp_path / "sub" / "fifo.ipynb")
    found = dict((s, p) for p, s in find_submissions([tmp_path / "sub"]))
    assert sorted(found) == ["fifo", "link"]
    for student, path in found.items():
        report = grade_notebook(path, student)
        assert report.status == "unreadable" and "TOP SECRET" not in report.message
    assert "symbolic link" in grade_notebook(found["link"], "link").message
    assert "not a regular file" in grade_notebook(found["fifo"], "fifo").message
    broken = tmp_path / "broken.ipynb"
    broken.write_text('{"cells": [ SECRET-IN-FILE')
    assert "SECRET-IN-FILE" not in grade_notebook(broken, "b").message


def test_require_sandbox_refuses_and_the_fallback_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "status", lambda: (False, "no sandbox: bwrap not found"))
    (tmp_path / "x.ipynb").write_text("{}")
    with pytest.raises(SandboxUnavailable, match="bwrap not found"):
        grade([tmp_path / "x.ipynb"], tmp_path / "out", require_sandbox=True, echo=lambda _: None)
    lines = []
    [report] = grade([tmp_path / "x.ipynb"], tmp_path / "out", echo=lines.append)
    assert lines[0] == "WARNING: no sandbox: bwrap not found" and report.status == "unreadable"
    assert grade_module.unisolated_note() == "no sandbox: bwrap not found"


def test_the_sandbox_binds_course_lib_and_assets_never_solutions(tmp_path):
    argv = sandbox.kernel_command(tmp_path / "ipc", tmp_path / "scratch")
    binds = [argv[i + 1] for i, a in enumerate(argv) if a in ("--bind", "--ro-bind", "--ro-bind-try")]
    inside_repo = {b for b in binds if b == str(REPO_DIR) or b.startswith(str(REPO_DIR) + os.sep)}
    assert str(REPO_DIR) not in inside_repo and str(SOLUTIONS_DIR) not in inside_repo
    assert {str(PACKAGE_DIR), str(ASSETS_DIR)} <= inside_repo
    assert inside_repo <= {str(PACKAGE_DIR), str(ASSETS_DIR), str(REPO_DIR / ".venv")} | {str(tmp_path / "ipc"), str(tmp_path / "scratch")}
    assert {"--unshare-all", "--die-with-parent", "--new-session", "--clearenv"} <= set(argv)
    assert argv[argv.index("--cap-drop") + 1] == "ALL" and "--share-net" not in argv
    writable = [argv[i + 1] for i, a in enumerate(argv) if a == "--bind"]
    assert writable == [str(tmp_path / "ipc"), str(tmp_path / "scratch")]


def test_static_flags_ignore_local_names_and_catch_introspection():
    aliases = {"stories", "check", "welcome", "run_cases"}
    solution = "def f(x):\n    return 1\n"
    assert flags_for("def f(x):\n    check = [x]\n    stories = len(check)\n    return stories\n", solution, aliases) == []
    assert flags_for("for check in range(3):\n    pass\n", solution, aliases) == []
    assert "touches the checkers: check" in flags_for("check.f = print\n", solution, aliases)[0]
    assert any("importlib" in f for f in flags_for("import importlib\nimportlib.import_module('x')\n", solution, aliases))
    assert any("sys.modules" in f for f in flags_for("import sys\nsys.modules['x']\n", solution, aliases))


def test_checker_gaps_are_closed():
    assert exact(Counter(a=1), {"a": 1}) is None and exact(defaultdict(int, a=1), {"a": 1}) is None
    assert exact({"a": 1}, {"a": 2}) == "values differ" and exact([1], (1,)) is not None
    assert tok.same_merges({(1, 3): 256}, {(1, 2): 256}).startswith("merge number 1 differs")


def test_the_audit_hook_notes_solutions_and_reference_sources(monkeypatch):
    monkeypatch.setattr(kernel_setup, "OPENED", [])
    kernel_setup._audit("open", (str(SOLUTIONS_DIR / "00_welcome.ipynb"), "r", 0))
    kernel_setup._audit("open", (str(PACKAGE_DIR / "welcome.py"), "r", 0))  # not while a checker runs the student
    monkeypatch.setattr(kernel_setup, "STUDENT_CODE", [True])
    kernel_setup._audit("open", (str(PACKAGE_DIR / "welcome.py"), "r", 0))
    kernel_setup._audit("open", (3, "r", 0))
    assert kernel_setup.drain_opened() == ["a solution notebook or the solutions folder", "course_lib/welcome.py"]
    assert kernel_setup.drain_opened() == []
