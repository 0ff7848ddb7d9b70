"""What grading a submission produces, and how it is written: a JSON report, Markdown feedback for the
student, a few terminal lines, and one gradebook.csv row per submission.

Much of a report is untrusted text (file and folder names, messages from the student's kernel), so every
writer escapes it: Markdown code blocks get a fence longer than any run of backticks inside, other
Markdown text has its markup escaped and stays on one line, terminal lines lose control characters, and
gradebook cells cannot start a spreadsheet formula or break a row.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path


class ExerciseStatus(StrEnum):
    NOT_GRADED = "not graded"            # never ran (time ran out, or an earlier crash)
    PASSED = "passed"
    MISSING = "missing"                  # no exercise cell with this id in the submission
    NOT_IMPLEMENTED = "not implemented"  # the stub still raises
    TIMEOUT = "timeout"
    CRASHED = "crashed"                  # the kernel died
    ERROR = "error"                      # the exercise cell raised
    FAILED = "failed"                    # a check or hidden check failed


class ReportStatus(StrEnum):
    GRADED = "graded"
    UNREADABLE = "unreadable"
    WRONG_NOTEBOOK = "wrong notebook"
    ERROR = "error"                      # the grader itself failed


@dataclass
class ExerciseResult:
    id: str
    max_points: int
    points: int = 0
    status: ExerciseStatus = ExerciseStatus.NOT_GRADED
    message: str = ""
    hint: str = ""
    flags: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Report:
    submission: str
    student: str
    chapter: str = ""
    status: ReportStatus = ReportStatus.GRADED
    message: str = ""
    score: int = 0
    max_score: int = 0
    exercises: list[ExerciseResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


MAX_BLOCK = 3000   # characters of one message in the feedback
MAX_LINE = 600     # characters of one note
CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
MARKDOWN_RE = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~=])")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def one_line(text: str, limit: int = MAX_LINE) -> str:
    """Untrusted text on one line, without control characters, cut to `limit`."""
    text = CONTROL_RE.sub("", str(text).replace("\r", " ").replace("\n", " "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def md_text(text: str, limit: int = MAX_LINE) -> str:
    """Untrusted text as inert Markdown: one line, every markup character escaped."""
    return MARKDOWN_RE.sub(r"\\\1", one_line(text, limit))


def md_code(text: str, limit: int = 200) -> str:
    """Untrusted text as an inline code span that it cannot close."""
    text = one_line(text, limit)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    if not longest:
        return f"`{text}`" if text.strip() else "` `"
    fence = "`" * (longest + 1)
    return f"{fence} {text} {fence}"


def md_block(text: str, limit: int = MAX_BLOCK) -> list[str]:
    """Untrusted text as a fenced code block whose fence is longer than any run of backticks inside."""
    text = CONTROL_RE.sub("", str(text).strip().replace("\r", ""))
    if len(text) > limit:
        text = text[:limit] + "\n[cut]"
    fence = "`" * max(3, max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return [fence, text, fence]


def feedback_text(report: Report) -> str:
    """The readable feedback a student gets (Markdown)."""
    lines = [f"# Feedback: {md_text(report.chapter or Path(report.submission).name, 200)}", "",
             f"Submission: {md_code(Path(report.submission).name)} · student: {md_code(report.student)}", ""]
    if report.status != ReportStatus.GRADED:
        lines += [f"**Not graded ({report.status}):** {md_text(report.message)}", ""]
    lines += [f"**Score: {report.score} / {report.max_score}**", ""]
    for e in report.exercises:
        mark = "✓" if e.status == ExerciseStatus.PASSED else "✗"
        lines.append(f"## {mark} {md_code(e.id)}: {e.points}/{e.max_points} points ({e.status})")
        if e.message:
            lines += [""] + md_block(e.message)
        if e.hint and e.status != ExerciseStatus.PASSED:
            lines += ["", f"Hint: {e.hint}"]  # the grader's own words (score.HINTS)
        for flag in e.flags:
            lines += ["", f"Flag for the instructor: {md_text(flag)}"]
        for warning in e.warnings:
            lines += ["", f"Note: {md_text(warning)}"]
        lines.append("")
    for warning in report.warnings:
        lines += [f"Note: {md_text(warning)}", ""]
    return "\n".join(lines).rstrip() + "\n"


def summary_text(report: Report) -> str:
    """A few terminal lines per submission."""
    head = f"{one_line(report.student, 120)}: {report.score}/{report.max_score} points" + (f" [{report.chapter}]" if report.chapter else "")
    if report.status != ReportStatus.GRADED:
        head += f"  NOT GRADED ({report.status}): {one_line(report.message, 300)}"
    lines = [head]
    for e in report.exercises:
        passed = e.status == ExerciseStatus.PASSED
        first = one_line(e.message.strip().splitlines()[0], 100) if e.message.strip() else ""
        lines.append(f"  {'✓' if passed else '✗'} {e.id:<28} {e.points}/{e.max_points}  {e.status}"
                     + (f": {first[:100]}" if first and not passed else "") + ("  [flagged]" if e.flags else ""))
    return "\n".join(lines)


def write_report(report: Report, out_dir: Path) -> None:
    """`<student>.json` (every field of the report) and `<student>.feedback.md`."""
    (out_dir / f"{report.student}.json").write_text(json.dumps(asdict(report), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (out_dir / f"{report.student}.feedback.md").write_text(feedback_text(report), encoding="utf-8")


def csv_cell(value):
    """A gradebook cell that a spreadsheet shows as text: one line, never a formula."""
    if not isinstance(value, str):
        return value
    value = one_line(value, 1000)
    return "'" + value if value.startswith(FORMULA_START) else value


def write_gradebook(reports: list[Report], path: Path) -> None:
    """One row per submission: student, chapter, status, score, max_score, flags, then points per exercise."""
    columns = []
    for r in reports:
        columns += [f"{r.chapter}:{e.id}" for e in r.exercises if f"{r.chapter}:{e.id}" not in columns]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([csv_cell(c) for c in ["student", "chapter", "status", "score", "max_score", "flags"] + columns])
        for r in sorted(reports, key=lambda r: r.student):
            points = {f"{r.chapter}:{e.id}": e.points for e in r.exercises}
            flags = sum(len(e.flags) for e in r.exercises)
            row = [str(r.student), r.chapter, str(r.status), r.score, r.max_score, flags] + [points.get(c, "") for c in columns]
            writer.writerow([csv_cell(c) for c in row])
