"""Durable storage: the SQLite event log and the persisted seq blocks. Plain
Python and sqlite3; no octoprint, no socketio."""
