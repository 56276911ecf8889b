"""moto's server (PyPI `moto[server]`) for the tests: every AWS service on one loopback port
(moto tells them apart by the service in the request's SigV4 scope), with the patches of
`moto_ecr.py` (GetAuthorizationToken) and `moto_lambda.py` (Lambda as AWS behaves, its knobs,
and the call log). Their docstrings list the environment variables each reads.

Usage: python3 moto_server.py  -> prints the port it listens on (127.0.0.1), then serves until
stdin is closed.
"""

import sys

import moto_ecr  # noqa: F401 - applies its patch
import moto_lambda  # noqa: F401 - applies its patches
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server._server.server_port, flush=True)
sys.stdin.read()
server.stop()
