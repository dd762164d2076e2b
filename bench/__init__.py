"""FluxPrint benchmark suite (GitHub issue #6): ``.venv/bin/python -m bench``."""
