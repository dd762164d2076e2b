"""What the hub checks before it serves: each package its config needs, by the
config (a module set to None in sys.modules is one Python cannot import)."""

from __future__ import annotations

import sys

import pytest
import yaml

from octoprint_fluxprint.hub import cli, startup
from octoprint_fluxprint.hub import config as C

PRINTER = {"id": "a", "url": "http://127.0.0.1:5000", "apikey": "K" * 32}
JWT_RS = {"jwt": {"algorithms": ["RS256"], "public_key": "/k.pem"}}


@pytest.mark.parametrize(
    "module, raw, names",
    [
        ("aiohttp", {"printers": [PRINTER]}, "the direct source's Socket.IO client"),
        ("redis", {"source": "redis"}, "the redis source needs redis"),
        ("jwt", {"printers": [PRINTER], "auth": {"jwt": {"secret": "s" * 32}}}, "PyJWT"),
        ("cryptography", {"printers": [PRINTER], "auth": JWT_RS}, "RS256 or ES256"),
    ],
)
def test_what_the_config_asks_for_is_checked(monkeypatch, module, raw, names):
    cfg = C.parse(raw, {})
    startup.check_packages(cfg)  # all there
    for name in list(sys.modules):
        if name == module or name.startswith(module + "."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(startup.MissingPackage) as info:
        startup.check_packages(cfg)
    line = str(info.value)
    assert names in line and line.endswith(startup.PIP) and "\n" not in line


def test_a_config_that_does_not_ask_is_not_held_back(monkeypatch):
    monkeypatch.setitem(sys.modules, "aiohttp", None)
    monkeypatch.setitem(sys.modules, "cryptography", None)
    startup.check_packages(C.parse({"source": "redis"}, {}))


def test_the_cli_says_it_in_one_line_and_exits_2(monkeypatch, tmp_path, capsys):
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump({"printers": [PRINTER]}))
    monkeypatch.setitem(sys.modules, "aiohttp", None)
    assert cli.main(["--config", str(path), "--check"]) == cli.EXIT_CONFIG
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fluxprint-hub: the direct source")
    assert err[0].endswith('pip install "OctoPrint-FluxPrint[hub]"')
    monkeypatch.setitem(sys.modules, "yaml", None)
    assert cli.main(["--config", str(path)]) == cli.EXIT_CONFIG
    assert "needs PyYAML" in capsys.readouterr().err
