#!/usr/bin/python3
"""Found by tools/soak: the upstream restarts between MAIL and RCPT. The proxy reconnects silently
(new greeting, EHLO) and sends RCPT without MAIL, so the client, which had 250 for MAIL, gets the
new upstream's `503 Error: need MAIL command` and then `554 5.5.1` for DATA: the session is out of
step. Expected: `421 4.4.2` (upstream lost mid-transaction), or MAIL replayed before RCPT.

    tools/soak.d/repro/transaction_upstream_restart.py BINARY
"""
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
proxy.start()
client = socket.create_connection(("127.0.0.1", proxy.port), timeout=30)
lines = client.makefile("rb")


def command(line=None):
    if line is not None:
        client.sendall(line.encode() + b"\r\n")
    while True:
        reply = lines.readline()
        if not reply or reply[3:4] != b"-":
            print(f"{line or 'greeting'} -> {reply.decode().strip() or 'EOF'}")
            return


command()
command("EHLO client.test")
command("MAIL FROM:<a@client.test>")
upstream.kill()          # the upstream crashes and comes back while the transaction is open
upstream.start()
time.sleep(0.5)
command("RCPT TO:<b@upstream.test>")
command("DATA")
proxy.terminate(20)
upstream.stop()
