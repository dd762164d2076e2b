"""The software-update hook: GitHub releases, installed with pip from the release's
source archive (the sdist path, which compiles the catalogues while building)."""

from __future__ import annotations

import octoprint_fluxprint as plugin


def test_softwareupdate_check_config():
    plugin.__plugin_load__()
    hook = plugin.__plugin_hooks__["octoprint.plugin.softwareupdate.check_config"]
    impl = plugin.__plugin_implementation__
    impl._plugin_version = plugin.__plugin_version__
    config = hook()
    assert list(config) == ["fluxprint"]
    entry = config["fluxprint"]
    assert entry["type"] == "github_release"
    assert (entry["user"], entry["repo"]) == ("fluxprint", "OctoPrint-FluxPrint")
    assert entry["current"] == plugin.__plugin_version__
    assert entry["displayVersion"] == plugin.__plugin_version__
    assert entry["pip"] == (
        "https://github.com/fluxprint/OctoPrint-FluxPrint/archive/{target_version}.zip"
    )
    assert plugin.__plugin_url__.endswith("/" + entry["user"] + "/" + entry["repo"])
