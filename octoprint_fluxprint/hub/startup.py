"""What the hub checks and loads before it serves, so that nothing it needs is
found missing while it runs.

- ``check_packages``: the modules its config needs beyond the plugin's own
  dependencies (the ``hub`` extra). A missing one is one line naming the pip
  command (``MissingPackage``), never a hub that looks alive while a source logs
  errors (python-engineio without aiohttp logs one every few seconds).
- ``prepare``: the files its config names, read once: the TLS pair, the CA bundles
  of https:// OctoPrints, the JWT key. A bad one is a ``ConfigError`` naming the
  key.

The CLI prints either and exits 2. This module imports nothing the ``hub`` extra
brings at its top: it runs before they are known to be there.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:  # pragma: no cover
    import ssl

    from .config import HubConfig

PIP = 'pip install "OctoPrint-FluxPrint[hub]"'


class MissingPackage(Exception):
    """A module the hub needs is not installed; the message is one line."""


def require(module: str, package: str, purpose: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise MissingPackage(
            f"{purpose} needs {package}, which is missing ({exc}): {PIP}"
        ) from None


def check_packages(cfg: Optional[HubConfig] = None) -> None:
    """Without a config: what reading one needs. With one: what it asks for."""
    if cfg is None:
        require("yaml", "PyYAML", "the config file")
        return
    if cfg.source == "direct":
        require("aiohttp", "aiohttp", "the direct source's Socket.IO client")
    else:
        require("redis.asyncio", "redis", "the redis source")
    if cfg.auth.jwt is not None:
        require("jwt", "PyJWT", "auth.jwt")
        if any(a != "HS256" for a in cfg.auth.jwt.algorithms):
            require("cryptography", "cryptography", "auth.jwt with RS256 or ES256")


@dataclass
class Prepared:
    """What the config's files hold, loaded."""

    identity: Any  # HubIdentity, with its JWT key when auth.jwt is set
    server_tls: Optional[ssl.SSLContext] = None
    client_tls: dict[str, ssl.SSLContext] = field(default_factory=dict)


def prepare(cfg: HubConfig) -> Prepared:
    """Reads every file the config names (blocking: before serving only)."""
    from . import tls
    from .identity import HubIdentity

    server = tls.server_context(cfg.listen.tls) if cfg.listen.tls else None
    clients = {
        p.id: tls.client_context(f"printers.{i}.ca", p.ca)
        for i, p in enumerate(cfg.printers)
        if p.ca and cfg.source == "direct"
    }
    return Prepared(HubIdentity(cfg), server, clients)
