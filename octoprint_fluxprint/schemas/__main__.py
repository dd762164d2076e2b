import sys

from ..core.schemadoc import dump_schema

sys.stdout.write(dump_schema())
