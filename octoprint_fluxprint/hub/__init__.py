"""The FluxPrint hub: a standalone host of the engine (``server/``) that serves many
printers on one endpoint, fed by a source (``sources/``). Never imports octoprint.
Run it with ``fluxprint-hub --config hub.yaml`` (see docs/hub.md)."""
