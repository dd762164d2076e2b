"""The hub's live page, ``GET /`` (``web.page: false`` turns it off): one tile per
printer the viewer may see, built on the npm client (``clients/js``) and served from
the package's own files, so a farm LAN without internet shows it too.

The assets in ``hub/static/`` are built from ``clients/js/page/`` by
``npm run build:page`` (esbuild: the client, uPlot and the page in one file) and
committed; a test fails when they are stale. The page authenticates like any client
of the hub: nothing from a trusted network, otherwise a token it asks for and keeps
in ``sessionStorage`` (never in a URL). No inline script or style, so the page's
Content-Security-Policy allows only its own origin.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import json
import os
import re
from typing import TYPE_CHECKING, Optional

import tornado.web

from .rest import rest_base

if TYPE_CHECKING:
    from .app import Hub

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
ASSETS = ("page.js", "page.css")
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
CONFIG_MARK = "{{config}}"


def security_headers(handler: tornado.web.RequestHandler) -> None:
    handler.set_header("Content-Security-Policy", CSP)
    handler.set_header("X-Content-Type-Options", "nosniff")
    handler.set_header("Referrer-Policy", "no-referrer")
    handler.set_header("X-Frame-Options", "DENY")


def render_index(template: str, listen_path: str, version: str) -> str:
    config = {"path": listen_path, "restBase": rest_base(listen_path), "version": version}
    return template.replace(CONFIG_MARK, html.escape(json.dumps(config), quote=True))


class Asset:
    """A built file, held in memory with its gzip form and ETag (read at startup)."""

    TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

    def __init__(self, name: str, body: bytes):
        self.body = body
        self.gzipped = gzip.compress(body, 9, mtime=0)
        self.etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        self.content_type = self.TYPES[os.path.splitext(name)[1]]


def load(static: str = STATIC) -> tuple[Optional[str], dict[str, Asset]]:
    """The page template and the assets; (None, {}) when they are not there."""
    try:
        with open(os.path.join(static, "index.html"), encoding="utf-8") as f:
            template = f.read()
        assets = {}
        for name in ASSETS:
            with open(os.path.join(static, name), "rb") as f:
                assets[name] = Asset(name, f.read())
    except OSError:
        return None, {}
    return template, assets


def routes(hub: Hub, version: str) -> list[tuple]:
    if not hub.cfg.web.page:
        return []
    template, assets = load()  # once, at startup: never on the loop while serving
    page = (
        None if template is None else render_index(template, hub.cfg.listen.path, version)
    )
    pattern = "|".join(re.escape(a) for a in ASSETS)
    return [
        (r"/", PageHandler, {"page": page}),
        (rf"/page/({pattern})", AssetHandler, {"assets": assets}),
    ]


class PageHandler(tornado.web.RequestHandler):
    def initialize(self, page: Optional[str]) -> None:
        self.page = page

    def get(self) -> None:
        security_headers(self)
        self.set_header("Cache-Control", "no-cache")
        if self.page is None:
            self.set_status(503)
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.finish("The page's assets are missing from this install (hub/static).")
            return
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(self.page)


class AssetHandler(tornado.web.RequestHandler):
    def initialize(self, assets: dict[str, Asset]) -> None:
        self.assets = assets

    def get(self, name: str) -> None:
        asset = self.assets.get(name)
        if asset is None:
            raise tornado.web.HTTPError(404)
        security_headers(self)
        self.set_header("Cache-Control", "no-cache")  # revalidated by its ETag
        self.set_header("ETag", asset.etag)
        self.set_header("Vary", "Accept-Encoding")
        if asset.etag in self.request.headers.get("If-None-Match", ""):
            self.set_status(304)
            self.finish()
            return
        self.set_header("Content-Type", asset.content_type)
        if "gzip" in self.request.headers.get("Accept-Encoding", ""):
            self.set_header("Content-Encoding", "gzip")
            self.finish(asset.gzipped)
        else:
            self.finish(asset.body)
