#!/usr/bin/python3
"""Found by tools/soak: the upstream dies in the middle of a relayed SASL exchange (after its 334);
the client's response is forwarded into the dead leg and the client gets no reply until the
upstream --command-timeout (300 s) passes, then `421 4.4.2 ... upstream timeout exceeded`.
Expected: `421 4.4.2` at once (as for a command after the upstream is lost).

    tools/soak.d/repro/auth_upstream_lost.py BINARY [extra proxy flags, e.g. --command-timeout 5]
"""
import base64
import pathlib
import socket
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from soak_peers import Proxy, Upstream  # noqa: E402

work = pathlib.Path(tempfile.mkdtemp(prefix="soak-repro-"))
upstream = Upstream(work, "u", "p")
upstream.start()
proxy = Proxy(pathlib.Path(sys.argv[1]), work, upstream.port, 10)
proxy.argv += sys.argv[2:]
proxy.start()
client = socket.create_connection(("127.0.0.1", proxy.port))
lines = client.makefile("rb")


def command(line=None, shown=None):
    if line is not None:
        client.sendall(line.encode() + b"\r\n")
    started = time.monotonic()
    while True:
        try:
            reply = lines.readline()
        except socket.timeout:
            print(f"{shown or line}: NO REPLY in {time.monotonic() - started:.0f} s")
            return
        if not reply or reply[3:4] != b"-":
            print(f"{shown or line or 'greeting'} -> {reply.decode().strip() or 'EOF'} "
                  f"after {time.monotonic() - started:.1f} s")
            return


command()
command("EHLO client.test")
command("AUTH PLAIN")
upstream.kill()          # the upstream crashes while the exchange waits for the client's response
time.sleep(1)
client.settimeout(30)
command(base64.b64encode(b"\0u\0p").decode(), shown="(SASL response)")
proxy.terminate(20)
