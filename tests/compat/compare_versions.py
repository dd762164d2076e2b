"""Compares the scripted session's records of OctoPrint 1.11 and 2.0 field by
field (``test_session.py`` writes them). Run by scripts/test.sh after both suites:

    .venv/bin/pytest tests/compat/compare_versions.py

Documented differences, allowed here: none beyond the timing fields the records
leave out (``test_session.TIMING``). The events' key sets must match too.
"""

from __future__ import annotations

import glob
import json
import os

from tests.compat.test_session import COMPAT_DIR


def records() -> dict[str, dict]:
    out = {}
    for path in glob.glob(os.path.join(COMPAT_DIR, "*.json")):
        with open(path) as f:
            data = json.load(f)
        out[data["octoprint"]] = data
    return out


def pick(found: dict[str, dict], major: str) -> dict:
    matches = [v for k, v in sorted(found.items()) if k.startswith(major)]
    assert matches, f"no record of OctoPrint {major} in {COMPAT_DIR}: {sorted(found)}"
    return matches[-1]


def test_same_payloads_on_1_11_and_2_0():
    found = records()
    old, new = pick(found, "1.11"), pick(found, "2.")
    assert [d["event"] for d in old["durable"]] == [d["event"] for d in new["durable"]]
    for a, b in zip(old["durable"], new["durable"]):
        assert a == b, (a, b)
    assert old["status_after_error"] == new["status_after_error"]
    assert old["keys"] == new["keys"]
