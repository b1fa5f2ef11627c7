#!/usr/bin/python3
"""Found by tools/soak: the proxy's RSS grows with every session and never comes back, while its
fds do. About 6 KiB for a connect-and-close, 11 KiB for EHLO+QUIT, 15 KiB with one small message
(release build); linear, no plateau. Postfix's smtp-sink is the upstream, no rules, one client.

    tools/soak.d/repro/rss_per_session.py BINARY KIND SESSIONS ROUNDS
    KIND: connect-close | ehlo-quit | one-message
"""
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from soak_peers import free_port, listening  # noqa: E402

binary, kind, sessions, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
work = pathlib.Path(tempfile.mkdtemp(prefix="soak-repro-"))
sink_port, proxy_port = free_port(), free_port()
sink = subprocess.Popen(["smtp-sink", "-u", "postfix", f"127.0.0.1:{sink_port}", "256"])
proxy = subprocess.Popen([binary, "proxy", "--listen", f"127.0.0.1:{proxy_port}", "--upstream",
                          f"127.0.0.1:{sink_port}", "--rules", "none", "--transcripts", str(work / "t")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while not listening(proxy_port):
    time.sleep(0.1)


def rss():
    status = pathlib.Path(f"/proc/{proxy.pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1])


def session():
    client = socket.create_connection(("127.0.0.1", proxy_port), timeout=30)
    lines = client.makefile("rb")

    def reply():
        while True:
            line = lines.readline()
            if not line or line[3:4] != b"-":
                return line
    if kind == "connect-close":
        client.close()
        return
    reply()
    client.sendall(b"EHLO x\r\n")
    reply()
    if kind == "one-message":
        for line in (b"MAIL FROM:<a@b.test>", b"RCPT TO:<c@d.test>", b"DATA"):
            client.sendall(line + b"\r\n")
            reply()
        client.sendall(b"Subject: x\r\n\r\n" + b"y" * 70 + b"\r\n.\r\n")
        reply()
    client.sendall(b"QUIT\r\n")
    reply()
    client.close()


try:
    print(f"{kind}: start RSS {rss()} KiB, {len(list(pathlib.Path(f'/proc/{proxy.pid}/fd').iterdir()))} fds")
    for number in range(1, rounds + 1):
        for _ in range(sessions):
            session()
        time.sleep(3)
        fds = len(list(pathlib.Path(f"/proc/{proxy.pid}/fd").iterdir()))
        print(f"{kind}: after {number * sessions} sessions RSS {rss()} KiB, {fds} fds")
finally:
    proxy.terminate()
    proxy.wait()
    sink.terminate()
    sink.wait()
    shutil.rmtree(work)
