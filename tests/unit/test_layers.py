"""The layers hold: core imports no framework, core/server/store/client import no
OctoPrint, imports run host -> server -> core only, and no module grows past
about 400 lines (docs/architecture.md)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

import octoprint_fluxprint

PACKAGE = os.path.dirname(octoprint_fluxprint.__file__)
MAX_LINES = 420

# a meta path finder that makes "import <name>" fail, as on a machine without it
BLOCKER = """
import importlib.abc, importlib.util, sys
BLOCKED = set(sys.argv[1].split(","))
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked for this test")
        return None
sys.meta_path.insert(0, Block())
for name in list(sys.modules):
    if name.split(".")[0] in BLOCKED:
        del sys.modules[name]
import importlib
for module in sys.argv[2:]:
    importlib.import_module(module)
    leaked = sorted(n for n in sys.modules if n.split(".")[0] in BLOCKED)
    assert not leaked, (module, leaked)
print("ok", len(sys.argv) - 2)
"""


def modules(layer: str) -> list[str]:
    out = []
    for root, _dirs, files in os.walk(os.path.join(PACKAGE, layer)):
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            rel = os.path.relpath(os.path.join(root, name), os.path.dirname(PACKAGE))
            dotted = rel[:-3].replace(os.sep, ".")
            out.append(dotted.removesuffix(".__init__"))
    return out


def import_blocked(blocked: list[str], names: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER, ",".join(blocked), *names],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("layer", ["core", "server", "store", "client", "hub"])
def test_layer_imports_without_octoprint(layer):
    names = modules(layer)
    assert names
    done = import_blocked(["octoprint", "flask"], names)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == f"ok {len(names)}"


def test_core_imports_without_any_framework():
    names = modules("core")
    done = import_blocked(
        ["octoprint", "flask", "socketio", "engineio", "tornado"], names
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_package_metadata_imports_nothing():
    done = import_blocked(
        ["octoprint", "flask", "socketio", "engineio", "tornado"], ["octoprint_fluxprint"]
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_blocker_blocks():
    # the check above would pass vacuously if blocking did not work
    done = import_blocked(["socketio"], ["octoprint_fluxprint.server.engine"])
    assert done.returncode != 0 and "blocked for this test" in done.stderr


# which layer may import which (relative imports inside the package)
ALLOWED = {
    "core": {"core"},
    # the farm publisher (store/publisher.py) writes the layout of core/streams.py
    "store": {"store", "core"},
    "server": {"server", "core"},
    "client": {"client", "core"},
    "plugin": {"plugin", "server", "core", "store"},
    "hub": {"hub", "server", "core", "store"},
    "schemas": {"schemas", "core"},
}


def package_imports(path: str, layer: str) -> set[str]:
    tree = ast.parse(open(path, encoding="utf-8").read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            parts = (node.module or "").split(".")
            if node.level == 1:
                found.add(layer)
            elif node.level == 2:
                found.add(parts[0] if parts[0] else "<package>")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            for name in names:
                if name.startswith("octoprint_fluxprint."):
                    found.add(name.split(".")[1])
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_imports_run_one_way(layer):
    for name in modules(layer):
        path = os.path.join(os.path.dirname(PACKAGE), *name.split(".")) + ".py"
        if not os.path.exists(path):
            path = os.path.join(os.path.dirname(PACKAGE), *name.split("."), "__init__.py")
        wrong = package_imports(path, layer) - ALLOWED[layer]
        assert not wrong, f"{name} imports {sorted(wrong)}"


def test_no_module_over_about_400_lines():
    long = {}
    for root, _dirs, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(root, name)
                with open(path, encoding="utf-8") as f:
                    count = sum(1 for _ in f)
                if count > MAX_LINES:
                    long[os.path.relpath(path, PACKAGE)] = count
    assert not long, long
