"""The Socket.IO engine on tornado, host-agnostic: the namespace handlers,
delivery (outbox, budgets, direct write), the guard (origins, caps, wire checks)
and the frames. Imports core, never octoprint (tests/unit/test_layers.py checks)."""
