import sys

from ..schema import dump_schema

sys.stdout.write(dump_schema())
