"""`python -m examples.servers.units --host 127.0.0.1 --port 8080`."""

from examples.servers.common import serve
from examples.servers.units.server import SPEC

serve(SPEC)
