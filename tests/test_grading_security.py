"""The grader against dishonest submissions: a hostile batch graded beside honest controls.

One batch on chapter 0, two at a time. Each attack is a submission; the honest controls in the same batch
must keep their exact grades, and solutions/, course_lib/ and the out folder must come out untouched.
Attacks that only the sandbox stops skip (with the reason) where bubblewrap does not work.
"""

import csv
import hashlib
import json
import os
import re
import time

import pytest
from test_grading import ALL, HEADER, SOLUTION, submission

from course_lib.toolchain import notebook_files as nbs
from course_lib.toolchain import sandbox
from course_lib.toolchain.grade import grade
from course_lib.toolchain.run import Limits
from course_lib.utils import PACKAGE_DIR, REPO_DIR, SOLUTIONS_DIR

SANDBOX, SANDBOX_LINE = sandbox.status()
needs_sandbox = pytest.mark.skipif(not SANDBOX, reason=f"needs the sandbox: {SANDBOX_LINE}")
MARKER = "pwned-by-a-submission-7f3a"
CANARY = "grader-secret-canary-51c9e0"
GUARDED = [SOLUTION, SOLUTIONS_DIR / "01_tokenization.ipynb", PACKAGE_DIR / "welcome.py", PACKAGE_DIR / "checks" / "__init__.py",
           PACKAGE_DIR / "checks" / "welcome.py", PACKAGE_DIR / "toolchain" / "kernel_setup.py"]
WRONG = {"word_counts": HEADER["word_counts"] + "def word_counts(text):\n    return {}\n",
         "most_common": HEADER["most_common"] + "def most_common(counts, k):\n    return []\n",
         "pooled_bits_per_byte": HEADER["pooled_bits_per_byte"] + "def pooled_bits_per_byte(logprobs2, texts):\n    return 0.0\n"}


def wrong_with(attack: str, where: str = "word_counts") -> dict[str, str]:
    """Wrong answers to every exercise, with `attack` at the top of one exercise cell."""
    return {**WRONG, where: HEADER[where] + attack + "\n" + WRONG[where].split("\n", 1)[1]}


TAMPER_MODULES = """
import importlib
_m = importlib.import_module("course_lib." + "chec" + "ks")
_fake = lambda group, fn, cases, *a, **k: print(f"{group}: {len(cases)}/{len(cases)} cases passed")
setattr(_m, "run_" + "cases", _fake)
_w = importlib.import_module("course_lib.checks." + "wel" + "come")
setattr(_w, "run_" + "cases", _fake)
for _name, _n in (("word_counts", 4), ("most_common", 3), ("pooled_bits_per_byte", 3)):
    setattr(_w, _name, (lambda name, n: lambda fn: print(f"{name}: {n}/{n} cases passed"))(_name, _n))
setattr(_m, "close", lambda *a, **k: (lambda got, expected: None))
"""

SHADOW_GLOBALS = """
class _Pass:
    def __getattr__(self, name):
        counts = {"word_counts": 4, "most_common": 3, "pooled_bits_per_byte": 3}
        return lambda fn: print(f"{name}: {counts[name]}/{counts[name]} cases passed")
globals()["check"] = _Pass()
globals()["run_" + "cases"] = lambda group, fn, cases, *a, **k: print(f"{group}: {len(cases)}/{len(cases)} cases passed")
import builtins
_real_import = builtins.__import__
def _import(name, globals=None, locals=None, fromlist=(), level=0):
    module = _real_import(name, globals, locals, fromlist, level)
    if name == "course_lib.checks" and fromlist and "run_cases" in fromlist:
        class _M:
            def __getattr__(self, attr):
                if attr == "run_cases":
                    return lambda group, fn, cases, *a, **k: print(f"{group}: {len(cases)}/{len(cases)} cases passed")
                return getattr(module, attr)
        return _M()
    return module
builtins.__import__ = _import
"""

REPLAY_OUTPUTS = """
import re as _re
def _replay(lines):
    source = "".join(lines)
    if "NBVAL_CHECK_OUTPUT" not in source:
        return lines
    counts = {"word_counts": 4, "most_common": 3, "pooled_bits_per_byte": 3}
    visible = _re.search(r"check\\.(\\w+)\\(", source)
    hidden = _re.search(r'run_cases\\("([^"]+)"', source)
    if hidden:
        line = f"{hidden.group(1)}: {source.count('Case(')}/{source.count('Case(')} cases passed"
    elif visible:
        line = f"{visible.group(1)}: {counts[visible.group(1)]}/{counts[visible.group(1)]} cases passed"
    else:
        return lines
    return [f"print({line!r})\\n"]
get_ipython().input_transformers_cleanup.append(_replay)
"""

READS_SOLUTIONS = """
import importlib.util, json, pathlib
_root = pathlib.Path(importlib.util.find_spec("course_lib").origin).parent.parent
try:
    for _cell in json.loads((_root / "solutions" / "00_welcome.ipynb").read_text())["cells"]:
        _src = "".join(_cell["source"])
        if _src.startswith("# EXERCISE"):
            exec(_src, globals())
except Exception:
    pass
"""

CALLS_REFERENCE = {
    "word_counts": HEADER["word_counts"] + "import importlib\ndef word_counts(text):\n"
                   "    return importlib.import_module('course_lib.wel' + 'come').word_counts(text)\n",
    "most_common": HEADER["most_common"] + "import sys\ndef most_common(counts, k):\n"
                   "    return sys.modules['course_lib.' + 'welcome'].most_common(counts, k)\n",
    "pooled_bits_per_byte": HEADER["pooled_bits_per_byte"] + "def pooled_bits_per_byte(logprobs2, texts):\n"
                            "    return globals()['wel' + 'come'].pooled_bits_per_byte(logprobs2, texts)\n",
}


def escape_attack(out_dir, submissions_dir) -> str:
    """Remount, write everywhere the grader cares about, scan /proc for the grader, leave a daemon behind."""
    return f"""
import importlib.util, os, pathlib, subprocess, sys
_root = pathlib.Path(importlib.util.find_spec("course_lib").origin).parent.parent
_targets = [_root / "solutions" / "00_welcome.ipynb", _root / "course_lib" / "checks" / "welcome.py",
            _root / "course_lib" / "welcome.py", _root / "course_lib" / "{MARKER}.py",
            pathlib.Path({str(out_dir)!r}) / "gradebook.csv", pathlib.Path({str(out_dir)!r}) / "all_solved.json",
            pathlib.Path({str(out_dir)!r}) / "{MARKER}.json", pathlib.Path({str(submissions_dir)!r}) / "honest_one.ipynb"]
for _pid in os.listdir("/proc"):
    for _link in ("cwd", "root"):
        try:
            _targets.append(pathlib.Path(os.readlink(f"/proc/{{_pid}}/{{_link}}")) / "{MARKER}.txt")
        except OSError:
            pass
for _mount in (_root / "course_lib", _root, pathlib.Path("/")):  # as root in the sandbox, a remount would free them
    subprocess.run(["mount", "-o", "remount,rw,bind", str(_mount)], capture_output=True)
for _t in _targets:
    try:
        with open(_t, "a") as _f:
            _f.write("\\n{MARKER}\\n")
    except OSError:
        pass
_daemon = '''
import os, sys, time, pathlib
if os.fork():
    os._exit(0)
os.setsid()
time.sleep(4)
for t in sys.argv[1:]:
    try:
        pathlib.Path(t).write_text("{MARKER}")
    except OSError:
        pass
time.sleep(60)
'''
subprocess.Popen([sys.executable, "-c", _daemon, "{MARKER}"] + [str(t) for t in _targets], start_new_session=True)
"""


LEAK_FIRST = """
import os, sys
_captured = []
get_ipython().events.register("pre_run_cell", lambda info: _captured.append(info.raw_cell) if "HIDDEN" in info.raw_cell else None)
_parent = ""
try:
    _parent = open(f"/proc/{os.getppid()}/cmdline", "rb").read().decode(errors="replace")
except OSError:
    pass
raise RuntimeError("ENV " + repr(dict(os.environ)) + " HOME " + os.path.expanduser("~") + " PARENT " + _parent
                   + " CWD " + os.getcwd() + " EXE " + sys.executable + "\\n```\\n\\n**Score: 7 / 7**\\n\\n```")
"""
LEAK_LATER = HEADER["pooled_bits_per_byte"] + 'raise RuntimeError("HIDDEN SOURCES " + " ".join(_captured))\n'


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    if not SANDBOX:
        pytest.skip(f"the hostile batch needs the sandbox: {SANDBOX_LINE}")
    folder = tmp_path_factory.mktemp("hostile")
    out = tmp_path_factory.mktemp("hostile-reports")
    counter_locals = HEADER["word_counts"] + (
        "import re\nfrom collections import Counter\n\n\ndef word_counts(text):\n"
        "    check = re.findall(r'[A-Za-z]+', text)\n    stories = Counter(w.lower() for w in check)\n    return stories\n")
    notebooks = {
        "honest_all": submission(ALL),
        "honest_one": submission({"word_counts": "solution"}),
        "honest_counter_and_local_names": submission({**ALL, "word_counts": counter_locals}),
        "tamper_modules": submission(wrong_with(TAMPER_MODULES)),
        "shadow_globals": submission(wrong_with(SHADOW_GLOBALS)),
        "replay_outputs": submission(wrong_with(REPLAY_OUTPUTS)),
        "reads_solutions": submission(wrong_with(READS_SOLUTIONS)),
        "calls_reference": submission(CALLS_REFERENCE),
        "escape": submission(wrong_with(escape_attack(out, folder))),
        "leaks": submission({**ALL, "word_counts": HEADER["word_counts"] + LEAK_FIRST, "pooled_bits_per_byte": LEAK_LATER}),
    }
    for name, nb in notebooks.items():
        nbs.write(nb, folder / f"{name}.ipynb")
    os.symlink(SOLUTION, folder / ".ipynb")  # a link named only ".ipynb", to the solution
    os.symlink("/etc/hostname", folder / "system_file.ipynb")
    weird = folder / "=HYPERLINK(1)\n+evil"
    weird.mkdir()
    nbs.write(submission({"most_common": "solution"}), weird / "00_welcome.ipynb")
    guarded = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in GUARDED}
    subs = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.ipynb") if not p.is_symlink()}
    os.environ["COURSE_TEST_CANARY"] = CANARY
    try:
        reports = grade([folder], out, limits=Limits(cell_timeout=40, notebook_timeout=300), jobs=2, echo=lambda _: None)
    finally:
        del os.environ["COURSE_TEST_CANARY"]
    time.sleep(6)  # long enough for a surviving daemon to act
    return {
        "reports": {r.student: r for r in reports}, "out": out, "folder": folder,
        "guarded": (guarded, {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in GUARDED}),
        "subs": (subs, {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.ipynb") if not p.is_symlink()}),
    }


def points(report) -> dict[str, int]:
    return {e.id: e.points for e in report.exercises}


def flags(report) -> str:
    return " | ".join(f for e in report.exercises for f in e.flags)


def outside_code_blocks(markdown: str, prefix: str) -> list[str]:
    """Lines starting with `prefix` that a Markdown renderer shows outside fenced code blocks."""
    found, fence = [], ""
    for line in markdown.splitlines():
        run = len(line) - len(line.lstrip("`"))
        if not fence and run >= 3:
            fence = "`" * run
        elif fence and line.strip() and set(line.strip()) == {"`"} and len(line.strip()) >= len(fence):
            fence = ""
        elif not fence and line.startswith(prefix):
            found.append(line)
    return found


def feedback(hostile, student) -> str:
    return (hostile["out"] / f"{student}.feedback.md").read_text(encoding="utf-8")


def test_honest_controls_keep_their_exact_grades(hostile):
    reports = hostile["reports"]
    assert points(reports["honest_all"]) == {"word_counts": 2, "most_common": 2, "pooled_bits_per_byte": 3}
    assert points(reports["honest_one"]) == {"word_counts": 2, "most_common": 0, "pooled_bits_per_byte": 0}
    weird = next(r for s, r in reports.items() if s.endswith("evil__00_welcome"))
    assert points(weird) == {"word_counts": 0, "most_common": 2, "pooled_bits_per_byte": 0}
    for name in ("honest_all", "honest_one"):
        assert not flags(reports[name]), name


def test_a_counter_and_local_names_check_and_stories_are_fine(hostile):
    report = hostile["reports"]["honest_counter_and_local_names"]
    assert report.score == 7 and not flags(report)


@pytest.mark.parametrize("attack", ["tamper_modules", "shadow_globals", "replay_outputs"])
def test_tampering_with_checkers_or_replaying_outputs_earns_nothing(hostile, attack):
    report = hostile["reports"][attack]
    assert report.score == 0, points(report)
    assert "never reached the grader" in flags(report) or "uses" in flags(report)


@needs_sandbox
def test_solutions_cannot_be_read_and_the_attempt_is_flagged(hostile):
    report = hostile["reports"]["reads_solutions"]
    assert report.score == 0
    assert "tried to read a solution notebook" in flags(report)


def test_reference_use_by_any_route_is_flagged_at_run_time(hostile):
    report = hostile["reports"]["calls_reference"]
    for e in report.exercises:
        assert any("calls course_lib's reference" in f for f in e.flags), (e.id, e.flags)


def test_symlinks_are_refused_never_followed(hostile):
    reports = hostile["reports"]
    for report in (reports["ipynb"], reports["system_file"]):
        assert report.status == "unreadable" and "symbolic link" in report.message and report.score == 0
    host = open("/etc/hostname").read().strip()
    assert not host or host not in feedback(hostile, "system_file")


@needs_sandbox
def test_nothing_outside_the_scratch_folder_changes_and_no_process_survives(hostile):
    before, after = hostile["guarded"]
    assert before == after
    assert hostile["subs"][0] == hostile["subs"][1]
    for folder in (SOLUTIONS_DIR, PACKAGE_DIR, hostile["out"], hostile["folder"]):
        for path in folder.rglob("*"):
            assert MARKER not in path.name, path
            if path.is_file() and path.suffix in (".py", ".ipynb", ".json", ".csv", ".md", ".txt"):
                # What the attack writes: its marker on a line of its own (the submission only quotes it).
                assert not re.search(f"(^|\n){MARKER}(\n|$)", path.read_text(encoding="utf-8", errors="replace")), path
    assert not list(REPO_DIR.glob(f"*{MARKER}*"))
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                assert MARKER.encode() not in handle.read(), f"process {pid} survived"
        except OSError:
            pass
    assert hostile["reports"]["escape"].score == 0


def test_gradebook_matches_the_reports(hostile):
    reports, out = hostile["reports"], hostile["out"]
    rows = list(csv.DictReader((out / "gradebook.csv").open(encoding="utf-8")))
    assert len(rows) == len(reports)
    for row in rows:
        assert int(row["score"]) == reports[row["student"]].score
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row.values())
    for student, report in reports.items():
        assert json.loads((out / f"{student}.json").read_text(encoding="utf-8"))["score"] == report.score


@needs_sandbox
def test_feedback_leaks_nothing_of_the_grader_or_the_hidden_checks(hostile):
    text = feedback(hostile, "leaks")
    for secret in (CANARY, str(hostile["out"]), str(REPO_DIR / "solutions"), os.path.expanduser("~") + "/",
                   "pytest", "Don't stop", "digits and apostrophes", "run_cases(\"word_counts (hidden)\""):
        assert secret not in text, secret
    # The exception's fake fence and score stay inside a longer fence, and only the real score is a score.
    assert outside_code_blocks(text, "**Score") == ["**Score: 2 / 7**"]
    assert "````" in text
    hidden_leak = next(e for e in hostile["reports"]["leaks"].exercises if e.id == "pooled_bits_per_byte")
    assert hidden_leak.points == 0 and "withheld" in hidden_leak.message
