"""The hub's page and REST switches and helpers (no network): the config section,
where the REST routes go beside the Socket.IO path, and the page's template."""

from __future__ import annotations

import json
import re

import pytest

from octoprint_fluxprint.hub import config as C
from octoprint_fluxprint.hub import page as P
from octoprint_fluxprint.hub.rest import rest_base

BASE = {"printers": [{"id": "a", "url": "http://127.0.0.1:5000", "apikey": "K" * 32}]}


def test_page_and_rest_are_on_by_default_and_switch_off():
    cfg = C.parse(BASE, {})
    assert cfg.web.page is True and cfg.web.rest is True
    off = C.parse({**BASE, "web": {"page": False, "rest": False}}, {})
    assert off.web.page is False and off.web.rest is False
    with pytest.raises(C.ConfigError, match="web.pages: unknown key"):
        C.parse({**BASE, "web": {"pages": False}}, {})


@pytest.mark.parametrize(
    "path, base",
    [
        ("/socket.io/", ""),
        ("/farm/socket.io/", "/farm"),
        ("/a/b/socket.io/", "/a/b"),
        ("/plugin/fluxprint/socket.io/", "/plugin/fluxprint"),
        ("/custom/", ""),
    ],
)
def test_rest_lives_beside_the_socketio_path(path, base):
    # the npm client derives the same (clients/js/src/rest.ts restBase)
    assert rest_base(path) == base


def test_the_page_template_gets_its_config_escaped():
    template, assets = P.load()
    assert template is not None and sorted(assets) == ["page.css", "page.js"]
    html = P.render_index(template, '/x"<y/socket.io/', "1.0")
    assert "{{config}}" not in html and "<y" not in html
    meta = re.search(r'<meta name="fluxprint-config" content="([^"]*)">', html)
    assert meta is not None
    import html as H

    config = json.loads(H.unescape(meta.group(1)))
    assert config == {"path": '/x"<y/socket.io/', "restBase": '/x"<y', "version": "1.0"}
    # no inline script or style: the CSP allows only the page's own files
    assert "<script>" not in template and "<style" not in template
    assert " style=" not in template and "onclick" not in template.lower()


def test_assets_are_held_gzipped_with_an_etag():
    _template, assets = P.load()
    js = assets["page.js"]
    import gzip

    assert gzip.decompress(js.gzipped) == js.body
    assert js.content_type.startswith("text/javascript")
    assert re.fullmatch(r'"[0-9a-f]{32}"', js.etag)
