"""`python -m examples.servers.text --host 127.0.0.1 --port 8080`."""

from examples.servers.common import serve
from examples.servers.text.server import SPEC

serve(SPEC)
