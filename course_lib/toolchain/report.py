"""What grading a submission produces, and how it is written: a JSON report, Markdown feedback for the
student, a few terminal lines, and one gradebook.csv row per submission.
"""

from __future__ import annotations

import csv
import json
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


def feedback_text(report: Report) -> str:
    """The readable feedback a student gets (Markdown)."""
    lines = [f"# Feedback: {report.chapter or Path(report.submission).name}", "",
             f"Submission: `{Path(report.submission).name}` · student: `{report.student}`", ""]
    if report.status != ReportStatus.GRADED:
        lines += [f"**Not graded ({report.status}):** {report.message}", ""]
    lines += [f"**Score: {report.score} / {report.max_score}**", ""]
    for e in report.exercises:
        mark = "✓" if e.status == ExerciseStatus.PASSED else "✗"
        lines.append(f"## {mark} `{e.id}`: {e.points}/{e.max_points} points ({e.status})")
        if e.message:
            lines += ["", "```", e.message.strip(), "```"]
        if e.hint and e.status != ExerciseStatus.PASSED:
            lines += ["", f"Hint: {e.hint}"]
        for flag in e.flags:
            lines += ["", f"Flag for the instructor: {flag}"]
        for warning in e.warnings:
            lines += ["", f"Note: {warning}"]
        lines.append("")
    for warning in report.warnings:
        lines.append(f"Note: {warning}")
    return "\n".join(lines).rstrip() + "\n"


def summary_text(report: Report) -> str:
    """A few terminal lines per submission."""
    head = f"{report.student}: {report.score}/{report.max_score} points" + (f" [{report.chapter}]" if report.chapter else "")
    if report.status != ReportStatus.GRADED:
        head += f"  NOT GRADED ({report.status}): {report.message}"
    lines = [head]
    for e in report.exercises:
        passed = e.status == ExerciseStatus.PASSED
        first = e.message.strip().splitlines()[0] if e.message.strip() else ""
        lines.append(f"  {'✓' if passed else '✗'} {e.id:<28} {e.points}/{e.max_points}  {e.status}"
                     + (f": {first[:100]}" if first and not passed else "") + ("  [flagged]" if e.flags else ""))
    return "\n".join(lines)


def write_report(report: Report, out_dir: Path) -> None:
    """`<student>.json` (every field of the report) and `<student>.feedback.md`."""
    (out_dir / f"{report.student}.json").write_text(json.dumps(asdict(report), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (out_dir / f"{report.student}.feedback.md").write_text(feedback_text(report), encoding="utf-8")


def write_gradebook(reports: list[Report], path: Path) -> None:
    """One row per submission: student, chapter, status, score, max_score, flags, then points per exercise."""
    columns = []
    for r in reports:
        columns += [f"{r.chapter}:{e.id}" for e in r.exercises if f"{r.chapter}:{e.id}" not in columns]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "chapter", "status", "score", "max_score", "flags"] + columns)
        for r in sorted(reports, key=lambda r: r.student):
            points = {f"{r.chapter}:{e.id}": e.points for e in r.exercises}
            flags = sum(len(e.flags) for e in r.exercises)
            writer.writerow([r.student, r.chapter, r.status, r.score, r.max_score, flags] + [points.get(c, "") for c in columns])
