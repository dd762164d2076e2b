import sys

from ..core.schema import dump_schema

sys.stdout.write(dump_schema())
