"""The wall around a submission's kernel: bubblewrap (`bwrap`) on Linux.

Only the kernel runs inside; nbval, the reference outputs and the verdicts stay outside (run.py, plugin.py,
verdicts.py). The kernel talks to nbval over ZeroMQ's ipc transport: unix sockets in `ipc/`, the one folder
besides its scratch folder that is bound into the sandbox writable. Inside, the kernel sees:

- the Python installation and the virtual environment, read-only (`sys.base_prefix`, `sys.prefix`, and any
  other folder on `sys.path`, except the course repository, of which only `course_lib/` and `assets/` are
  bound, read-only: never `solutions/`, `notebooks/`, `tests/` or the grader's out folder);
- /usr (and the /lib, /bin links to it) and a few files of /etc, read-only;
- its own /proc (a new PID namespace), a minimal /dev, an empty /tmp;
- `scratch/`, its working directory and $HOME, writable; everything it writes there is deleted after.

No network (a new network namespace with nothing in it), no other namespaces shared, no capabilities
(`--cap-drop ALL`; a grader running as root runs the kernel as `nobody` in a user namespace, so it cannot
remount the read-only folders), an environment built from nothing (`--clearenv`), a new session (no
terminal to inject keystrokes into), and no process left behind: `--die-with-parent` ends the sandbox
with the process that started it, and the PID namespace ends every process in it, daemons included, when
the kernel (its first process) ends.

Where bwrap is missing or does not work (macOS, Windows, a container without user namespaces), grading
runs without a sandbox and says so; `--require-sandbox` refuses instead.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ..utils import ASSETS_DIR, PACKAGE_DIR, REPO_DIR

INSTALL_HINT = ("install bubblewrap to isolate submissions: `sudo apt-get install bubblewrap` (Debian, Ubuntu), "
                "`sudo dnf install bubblewrap` (Fedora), `sudo pacman -S bubblewrap` (Arch)")
ETC_FILES = ["/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf",
             "/etc/fonts", "/etc/ssl/certs", "/etc/alternatives", "/etc/mime.types"]
SAFE_ENV = {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PATH": "/usr/local/bin:/usr/bin:/bin", "MPLBACKEND": "Agg",
            "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "COURSE_GRADING": "1"}


def isolation_flags() -> list[str]:
    """Every namespace new, no capabilities; a grader running as root runs the kernel as nobody."""
    as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    return ["--unshare-all", *(["--unshare-user", "--uid", "65534", "--gid", "65534"] if as_root else []),
            "--cap-drop", "ALL", "--die-with-parent", "--new-session", "--clearenv"]


def bwrap_path() -> str | None:
    return shutil.which("bwrap") if sys.platform.startswith("linux") else None


@functools.lru_cache(maxsize=1)
def status() -> tuple[bool, str]:
    """(usable?, one line saying what isolates submissions here). Tries bwrap once per process."""
    if not sys.platform.startswith("linux"):
        return False, f"no sandbox on {sys.platform}: submissions run unisolated (bubblewrap is Linux only)"
    path = bwrap_path()
    if not path:
        return False, f"no sandbox: bwrap not found, submissions run unisolated; {INSTALL_HINT}"
    probe = [path, "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", *isolation_flags(), sys.executable, "-c", "pass"]
    try:
        done = subprocess.run(probe, capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, f"no sandbox: bwrap does not start ({type(error).__name__}); submissions run unisolated"
    if done.returncode != 0:
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["unknown error"]
        return False, f"no sandbox: bwrap fails here ({why[0][:120]}); submissions run unisolated"
    version = subprocess.run([path, "--version"], capture_output=True, text=True).stdout.strip()
    return True, f"sandbox: {version or 'bubblewrap'} (no network, read-only course, own scratch folder)"


def _readable_roots() -> list[Path]:
    """Folders the kernel must read: the Python installation, the environment, other sys.path entries."""
    roots = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path(sys.prefix)}
    for entry in sys.path:
        if not entry or not os.path.isdir(entry):
            continue
        path = Path(entry).resolve()
        if path == REPO_DIR or REPO_DIR in path.parents or path in REPO_DIR.parents:
            continue  # the course repository: only course_lib/ and assets/ (below)
        if path.parts[:2] in (("/", "usr"),):
            continue
        roots.add(path)
    # Keep only the outermost of nested roots.
    ordered = sorted(roots, key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in ordered:
        if not any(k == path or k in path.parents for k in kept):
            kept.append(path)
    return kept


def kernel_command(ipc_dir: Path, scratch_dir: Path, python: str = sys.executable) -> list[str]:
    """The command that starts an ipykernel inside the sandbox (`{connection_file}` is filled in later)."""
    bwrap = bwrap_path() or "bwrap"
    # The empty /tmp comes first: a later mount would hide a course or virtual environment that lives
    # under /tmp (a clone in /tmp, as CI may make), while binds after it are mounted on top of it.
    args = [bwrap, "--tmpfs", "/tmp", "--ro-bind", "/usr", "/usr"]
    for name in ("lib", "lib64", "lib32", "bin", "sbin"):
        target = Path("/") / name
        if target.is_symlink():
            args += ["--symlink", os.readlink(target), str(target)]
        elif target.is_dir():
            args += ["--ro-bind", str(target), str(target)]
    for path in ETC_FILES:
        args += ["--ro-bind-try", path, path]
    for root in _readable_roots():
        args += ["--ro-bind", str(root), str(root)]
    args += ["--ro-bind", str(PACKAGE_DIR), str(PACKAGE_DIR), "--ro-bind-try", str(ASSETS_DIR), str(ASSETS_DIR),
             "--proc", "/proc", "--dev", "/dev",
             "--bind", str(ipc_dir), str(ipc_dir), "--bind", str(scratch_dir), str(scratch_dir), "--chdir", str(scratch_dir),
             *isolation_flags(), "--hostname", "sandbox"]
    home = scratch_dir / "home"
    env = dict(SAFE_ENV, HOME=str(home), TMPDIR="/tmp", IPYTHONDIR=str(home / ".ipython"),
               MPLCONFIGDIR=str(home / ".matplotlib"), JUPYTER_RUNTIME_DIR=str(home / ".jupyter"))
    for key, value in env.items():
        args += ["--setenv", key, value]
    return args + ["--", python, "-m", "ipykernel_launcher", "-f", "{connection_file}"]


def prepare(workdir: Path) -> tuple[Path, Path]:
    """The ipc and scratch folders of one run, inside the (grader-only) work folder."""
    ipc, scratch = workdir / "sandbox" / "ipc", workdir / "sandbox" / "scratch"
    (scratch / "home").mkdir(parents=True)
    ipc.mkdir(parents=True)
    return ipc, scratch
