"""The hub as a user installs it: the wheel built once (``python -m build``: the
sdist, then the wheel from it, as a release is) and ``<wheel>[hub]`` installed into
a fresh venv (``.hubvenv``) with neither OctoPrint nor the ``develop`` extra. The
hub tests, the farm tests and the demo run its ``fluxprint-hub``.

    python tools/hubvenv.py          # make .hubvenv current; prints its fluxprint-hub
    python tools/hubvenv.py --force  # rebuild and reinstall

A stamp in the venv holds a hash of what went in: when pyproject.toml changed the
venv is made again from nothing (a dependency taken out must go missing here too);
when only the package's files changed the new wheel replaces the old one.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.environ.get("FLUXPRINT_HUB_VENV") or os.path.join(ROOT, ".hubvenv")
STAMP = "fluxprint-build.json"
PACKAGE = "octoprint_fluxprint"


def _digest(paths: list[str]) -> str:
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(os.path.relpath(path, ROOT).encode() + b"\0")
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def digests(root: str = ROOT) -> dict[str, str]:
    """``deps``: the distribution's metadata; ``code``: every file of the package
    (what a wheel would hold, compiled catalogues aside)."""
    files = []
    for folder, dirs, names in os.walk(os.path.join(root, PACKAGE)):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        files += [
            os.path.join(folder, n) for n in names if not n.endswith((".pyc", ".mo"))
        ]
    return {
        "deps": _digest([os.path.join(root, "pyproject.toml")]),
        "code": _digest(files),
    }


def executable(venv: str = VENV) -> str:
    return os.path.join(venv, "bin", "fluxprint-hub")


def _stamp(venv: str) -> dict:
    try:
        with open(os.path.join(venv, STAMP)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _run(cmd: list[str], **kw) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} exited with {done.returncode}:\n"
            + done.stdout[-3000:]
            + done.stderr[-3000:]
        )


def build_wheel(outdir: str, python: str = sys.executable) -> str:
    """``python -m build`` of the working tree (sdist, then the wheel from it)."""
    _run([python, "-m", "build", "--outdir", outdir, ROOT], cwd=ROOT)
    wheels = [f for f in os.listdir(outdir) if f.endswith(".whl")]
    assert len(wheels) == 1, wheels
    return os.path.join(outdir, wheels[0])


def ensure(
    venv: str = VENV,
    force: bool = False,
    python: Optional[str] = None,
    log=None,
) -> str:
    """Makes ``venv`` hold the current tree's wheel with the ``hub`` extra; returns
    its ``fluxprint-hub``. Safe to call from several processes at once."""
    python = python or os.environ.get("PYTHON") or shutil.which("python3") or "python3"
    want = digests()
    os.makedirs(os.path.dirname(os.path.abspath(venv)), exist_ok=True)
    with open(os.path.abspath(venv) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        have = _stamp(venv)
        fresh = os.path.exists(executable(venv)) and not force
        if fresh and have == want:
            return executable(venv)
        remake = not fresh or have.get("deps") != want["deps"]
        pip = [os.path.join(venv, "bin", "python"), "-m", "pip"]
        pip += ["--disable-pip-version-check", "-q"]
        with tempfile.TemporaryDirectory(prefix="fluxprint-wheel-") as out:
            if log:
                log(f"building the wheel for {venv} ...")
            wheel = build_wheel(out)
            if remake:
                if log:
                    log(f"making {venv} (pip install '<wheel>[hub]') ...")
                _run([python, "-m", "venv", "--clear", venv])
                _run([*pip, "install", f"{wheel}[hub]"])
            else:
                # the same dependencies: only the package changed
                _run([*pip, "install", "--force-reinstall", "--no-deps", wheel])
            _run([*pip, "check"])
        with open(os.path.join(venv, STAMP), "w") as f:
            json.dump(want, f)
        return executable(venv)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--venv", default=VENV)
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args()
    path = ensure(
        args.venv, force=args.force, log=lambda m: print(m, file=sys.stderr, flush=True)
    )
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
