"""The translation catalogues: messages.pot matches the sources (Python, Jinja2
templates and JavaScript, per babel.cfg) and German translates every message."""

from __future__ import annotations

import os
import subprocess
import sys

from babel.messages.pofile import read_po

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
POT = os.path.join(ROOT, "translations", "messages.pot")
DE = os.path.join(ROOT, "translations", "de", "LC_MESSAGES", "messages.po")


def msgids(path: str) -> set:
    with open(path, "rb") as f:
        return {m.id for m in read_po(f) if m.id}


def test_pot_is_up_to_date(tmp_path):
    fresh = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "lazy_gettext",
            "-o",
            str(fresh),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    missing = msgids(str(fresh)) - msgids(POT)
    stale = msgids(POT) - msgids(str(fresh))
    assert not missing and not stale, (
        f"translations/messages.pot is out of date (missing {sorted(missing)}, "
        f"stale {sorted(stale)}): run pybabel extract (see babel.cfg), then "
        "pybabel update -i translations/messages.pot -d translations"
    )


def test_german_translates_every_message():
    with open(DE, "rb") as f:
        catalog = read_po(f, locale="de")
    assert msgids(DE) == msgids(POT)
    untranslated = [m.id for m in catalog if m.id and not m.string]
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert not untranslated and not fuzzy, (untranslated, fuzzy)
    assert not list(catalog.check())
