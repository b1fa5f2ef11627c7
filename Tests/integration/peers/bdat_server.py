#!/usr/bin/python3
"""A minimal CHUNKING (RFC 3030) server for one test session: aiosmtpd and smtp-sink 3.7 lack BDAT.

It serves connections one at a time on --host/--port, prints "READY" once listening, answers every
BDAT chunk with 250 (the LAST one with "queued"), and exits on SIGTERM.
"""
import argparse
import signal
import socket
import sys


def serve(connection):
    stream = connection.makefile("rb")
    def reply(line):
        connection.sendall(line.encode() + b"\r\n")
    reply("220 bdat.test ESMTP raw CHUNKING peer")
    total = 0
    while True:
        line = stream.readline(4096)
        if not line:
            return
        command = line.rstrip(b"\r\n").decode("ascii", "replace")
        verb = command.split(" ", 1)[0].upper()
        if verb == "EHLO":
            connection.sendall(b"250-bdat.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                               b"250-ENHANCEDSTATUSCODES\r\n250 CHUNKING\r\n")
        elif verb == "MAIL":
            total = 0
            reply("250 2.1.0 Ok")
        elif verb == "RCPT":
            reply("250 2.1.5 Ok")
        elif verb == "BDAT":
            parts = command.split()
            size = int(parts[1])
            remaining = size
            while remaining:
                chunk = stream.read(remaining)
                if not chunk:
                    return
                remaining -= len(chunk)
            total += size
            if len(parts) > 2 and parts[2].upper() == "LAST":
                reply(f"250 2.0.0 Ok: {total} octets queued as B1D2")
            else:
                reply(f"250 2.0.0 Ok: {size} octets received")
        elif verb == "QUIT":
            reply("221 2.0.0 Bye")
            return
        elif verb == "RSET":
            reply("250 2.0.0 Ok")
        else:
            reply("502 5.5.2 Error: command not recognized")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    options = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    family = socket.AF_INET6 if ":" in options.host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((options.host, options.port))
    listener.listen(4)
    print("READY", flush=True)
    while True:
        connection, _ = listener.accept()
        with connection:
            try:
                serve(connection)
            except (OSError, ValueError):
                pass


if __name__ == "__main__":
    sys.exit(main())
