"""The npm client (clients/js) as a user gets it: ``npm pack``, the tarball installed
into a scratch project (offline, from the npm cache that ``scripts/setup.sh --test``
filled), and the Node suite run there with node's test runner against the real
parts: unit tests, the live tests (tests/js/conftest.py's OctoPrint and hubs, driven
through the control server), the React hook under react-test-renderer, and a
FluxStudio-style TypeScript file compiled under ``tsc --strict`` against the packed
declarations. Also: the committed generated types and page bundle are fresh."""

from __future__ import annotations

import glob
import json
import os
import re
import shutil

import pytest

from tests.js.conftest import JS, NODE, NPM, PRINTER, TOKEN, Control, jwt_token, run

pytestmark = pytest.mark.integration

REGISTRY = "https://registry.npmjs.org"
# test tooling the scratch project installs beside the tarball (versions: the lock's)
TEST_TOOLS = ("react", "react-test-renderer", "typescript", "@types/node", "@types/react")


def resolve(packages: dict, parent: str, name: str) -> str:
    """Where node finds ``name`` from the package at ``parent`` in a lockfile."""
    base = parent
    while True:
        path = (base + "/" if base else "") + "node_modules/" + name
        if path in packages:
            return path
        if not base:
            raise KeyError(f"{name} (from {parent or 'the root'}) is not in the lock")
        cut = base.rfind("/node_modules/")
        base = base[:cut] if cut >= 0 else ""


def closure(packages: dict, roots: list[str]) -> set[str]:
    """The lockfile paths that ``roots`` need at run time (peers that are optional
    and optional dependencies for other platforms left out)."""
    out: set[str] = set()
    stack = [("", name) for name in roots]
    while stack:
        parent, name = stack.pop()
        try:
            path = resolve(packages, parent, name)
        except KeyError:
            continue  # an optional dependency for another platform
        if path in out:
            continue
        out.add(path)
        entry = packages[path]
        optional_peers = entry.get("peerDependenciesMeta", {})
        deps = list(entry.get("dependencies", {}))
        deps += [
            p
            for p in entry.get("peerDependencies", {})
            if not optional_peers.get(p, {}).get("optional")
        ]
        stack.extend((path, dep) for dep in deps)
    return out


def tarball_url(path: str, version: str) -> str:
    name = path.rsplit("node_modules/", 1)[1]
    return f"{REGISTRY}/{name}/-/{name.split('/')[-1]}-{version}.tgz"


def scratch_project(folder: str, tarball: str) -> None:
    """package.json and a package-lock.json for the scratch project: the tarball by
    file, its dependencies and the test tools at the versions clients/js locks, so
    ``npm ci --offline`` installs them from the cache without the registry."""
    with open(os.path.join(JS, "package.json")) as f:
        pkg = json.load(f)
    with open(os.path.join(JS, "package-lock.json")) as f:
        lock = json.load(f)["packages"]
    name = os.path.basename(tarball)
    tools = {t: lock["node_modules/" + t]["version"] for t in TEST_TOOLS}
    root = {
        "name": "fluxprint-scratch",
        "private": True,
        "type": "module",
        "dependencies": {pkg["name"]: f"file:{name}"},
        "devDependencies": tools,
    }
    client = {
        k: pkg[k]
        for k in ("version", "license", "dependencies", "peerDependencies")
        if k in pkg
    }
    client.update(
        resolved=f"file:{name}", peerDependenciesMeta=pkg["peerDependenciesMeta"]
    )
    runtime = closure(lock, list(pkg["dependencies"]))
    dev = closure(lock, list(tools)) - runtime
    packages = {
        "": {k: v for k, v in root.items() if k not in ("private", "type")},
        f"node_modules/{pkg['name']}": client,
    }
    for path in sorted(runtime | dev):
        entry = {k: v for k, v in lock[path].items() if k not in ("dev", "devOptional")}
        # the machine's npm omits registry URLs from lockfiles; with them, npm ci
        # takes the tarballs from its cache by integrity, without any metadata
        entry.setdefault("resolved", tarball_url(path, entry["version"]))
        if path in dev:
            entry["dev"] = True
        packages[path] = entry
    with open(os.path.join(folder, "package.json"), "w") as f:
        json.dump(root, f, indent=2)
    with open(os.path.join(folder, "package-lock.json"), "w") as f:
        json.dump(
            {
                "name": root["name"],
                "lockfileVersion": 3,
                "requires": True,
                "packages": packages,
            },
            f,
            indent=2,
        )


@pytest.fixture(scope="module")
def packed(tmp_path_factory, artifacts_dir):
    """The scratch project with the packed client installed, and the tests copied."""
    folder = str(tmp_path_factory.mktemp("npm-scratch"))
    out = run([NPM, "pack", "--silent", "--pack-destination", folder], cwd=JS)
    tarball = os.path.join(folder, out.stdout.strip().splitlines()[-1])
    scratch_project(folder, tarball)
    run([NPM, "ci", "--offline", "--no-audit", "--no-fund", "--silent"], cwd=folder)
    shutil.copytree(os.path.join(JS, "test"), os.path.join(folder, "test"))
    installed = os.path.join(folder, "node_modules", "@fluxprint", "client")
    shipped = sorted(
        os.path.relpath(p, installed)
        for p in glob.glob(os.path.join(installed, "**", "*"), recursive=True)
        if os.path.isfile(p)
    )
    assert "dist/index.js" in shipped and "dist/react.d.ts" in shipped, shipped
    assert not [p for p in shipped if p.startswith(("src/", "test/", "page/"))], shipped
    size = json.loads(run([NODE, "scripts/size.mjs", tarball], cwd=JS).stdout)
    size["files"] = len(shipped)
    with open(os.path.join(artifacts_dir, "js-size.json"), "w") as f:
        json.dump(size, f, indent=2)
    print(f"\n@fluxprint/client: {size}")
    return folder


def test_generated_types_and_page_bundle_are_fresh():
    run([NODE, "scripts/check-fresh.mjs"], cwd=JS)


def test_the_page_type_checks():
    run([NODE, "node_modules/typescript/bin/tsc", "-p", "tsconfig.page.json"], cwd=JS)


def test_fluxstudio_style_use_compiles_under_strict(packed):
    tsc = os.path.join(packed, "node_modules", "typescript", "bin", "tsc")
    run([NODE, tsc, "-p", "test/types/tsconfig.json"], cwd=packed)


def node_suite(packed, octo, hub, token_hub, artifacts_dir, files: list[str], name: str):
    """node --test on ``files`` (relative to the scratch project), serially (they
    share the hub), with the real parts' addresses and the control server."""
    control = Control(octo, hub).start()
    try:
        done = run(
            [NODE, "--test", "--test-concurrency=1", "--test-reporter=tap", *files],
            cwd=packed,
            timeout=600,
            log=os.path.join(artifacts_dir, f"{name}.tap"),
            env={
                "FLUXPRINT_HUB_URL": hub.url,
                "FLUXPRINT_PRINTER": PRINTER,
                "FLUXPRINT_OCTO_URL": octo.url,
                "FLUXPRINT_OCTO_APIKEY": octo.apikey,
                "FLUXPRINT_TOKEN_HUB_URL": token_hub.url,
                "FLUXPRINT_TOKEN": TOKEN,
                "FLUXPRINT_JWT": jwt_token(),
                "FLUXPRINT_CONTROL": control.url,
                "FLUXPRINT_ARTIFACTS": artifacts_dir,
            },
        )
    finally:
        control.stop()
        octo.ensure_operational()
    counts = dict(
        re.findall(
            r"^# (tests|pass|fail|skipped|todo|cancelled) (\d+)$", done.stdout, re.M
        )
    )
    print(f"\nnode --test ({name}): {counts}")
    assert counts.get("fail") == "0" and counts.get("skipped") == "0", done.stdout[-3000:]
    return counts


def test_the_node_suite_against_real_parts(packed, octo, hub, token_hub, artifacts_dir):
    files = sorted(
        os.path.relpath(p, packed)
        for p in glob.glob(
            os.path.join(packed, "test", "**", "*.test.mjs"), recursive=True
        )
        if "/batch/" not in p
    )
    counts = node_suite(
        packed, octo, hub, token_hub, artifacts_dir, files, "js-node-suite"
    )
    assert int(counts["pass"]) >= 20, counts


def test_batches_at_a_real_hub(packed, octo, hub, token_hub, artifacts_dir):
    """``printer:subscribe {batch}`` at the hub: a batched client receives, unpacked,
    what an unbatched one does."""
    files = ["test/batch/batch.test.mjs"]
    node_suite(packed, octo, hub, token_hub, artifacts_dir, files, "js-batch")
