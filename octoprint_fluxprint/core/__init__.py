"""FluxPrint's pure core: the schema and shaping, coalescing, rooms and the
per-printer state, subscriptions, deltas, the replay seam, budget, rate-limit and
auth decisions. Imports neither octoprint nor socketio, engineio or tornado
(tests/unit/test_layers.py checks), so every host and every test can use it."""
