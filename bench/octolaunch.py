"""``python -m bench.octolaunch serve ...``: runs OctoPrint with the compress-once
broadcast frames hook (``octoprint_fluxprint.wsframes``) applied to the plugin's
transport, as proposed to the lead. Once transport.py uses wsframes itself, this
changes nothing.

The hook is two lines in ``transport.py`` (see docs/benchmarks.md):
the handler class gets ``wsframes.FramesHandlerMixin`` as first base, and ``emit()``
builds its packet with ``wsframes.broadcast_packet(encoded)``.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
import types

TARGET = "octoprint_fluxprint.transport"


def patch(module: types.ModuleType) -> None:
    if getattr(module, "wsframes", None) is not None:
        return  # the lead's hook is in
    from engineio import packet as eio_packet

    from octoprint_fluxprint import wsframes

    transport_cls = module.Transport
    original = transport_cls._handler_class

    def _handler_class(self):
        cls = original(self)
        return type(cls.__name__, (wsframes.FramesHandlerMixin, cls), {})

    transport_cls._handler_class = _handler_class
    # emit() builds eio_packet.Packet(eio_packet.MESSAGE, encoded): make it a
    # BroadcastPacket (emit is the only user of the name in transport.py)
    module.eio_packet = types.SimpleNamespace(
        Packet=wsframes.BroadcastPacket, MESSAGE=eio_packet.MESSAGE
    )
    module._bench_frames_patched = True
    if os.environ.get("FLUXPRINT_BENCH_DIRECT") == "1":
        _patch_direct(transport_cls)


def _patch_direct(transport_cls) -> None:
    """Experiment for the lead: broadcast with wsframes.send_direct first."""
    from octoprint_fluxprint import wsframes

    async def _send_all(self, eio_sids, pkt):
        send = self.sio.eio.send_packet
        for eio_sid in eio_sids:
            if wsframes.send_direct(self.sio, eio_sid, pkt):
                continue
            try:
                await send(eio_sid, pkt)
            except Exception:
                pass

    transport_cls._send_all = _send_all


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != TARGET:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return None
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            patch(module)

        loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


def main() -> None:
    if os.environ.get("FLUXPRINT_BENCH_FRAMES", "1") == "1":
        sys.meta_path.insert(0, _Finder())
    import octoprint

    sys.argv[0] = "octoprint"
    octoprint.main()


if __name__ == "__main__":
    main()
