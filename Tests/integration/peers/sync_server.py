#!/usr/bin/python3
"""An SMTP server that offers no PIPELINING and enforces synchronisation as Exim does by default
(`smtp_enforce_sync`): a client that sends its next command (or anything after the end of data)
before this server has replied gets `554 SMTP synchronization error` and is disconnected.

It serves connections one at a time on --host/--port, prints "READY" once listening, appends each
accepted message to --record as a JSON line {"mail", "rcpt", "content" (base64)}, and exits on
SIGTERM. It waits --settle seconds before each reply, so input pipelined behind a command has
arrived by the time it looks.
"""
import argparse
import base64
import json
import select
import signal
import socket
import sys


class SynchronizationError(Exception):
    pass


class Connection:
    def __init__(self, sock, settle):
        self.sock = sock
        self.settle = settle
        self.buffer = b""

    def line(self):
        while b"\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.rstrip(b"\r")

    def reply(self, text):
        """Replies, unless the client has already sent more: that is pipelining, which was not offered."""
        readable, _, _ = select.select([self.sock], [], [], self.settle)
        if self.buffer or readable:
            self.sock.sendall(b"554 SMTP synchronization error\r\n")
            raise SynchronizationError()
        self.sock.sendall(text.encode() + b"\r\n")


def serve(connection, record):
    connection.sock.sendall(b"220 sync.test ESMTP synchronising peer\r\n")
    mail, rcpt = None, []
    while True:
        line = connection.line()
        if line is None:
            return
        verb = line.split(b" ", 1)[0].upper()
        if verb in (b"EHLO", b"HELO"):
            connection.reply("250-sync.test\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES" if verb == b"EHLO" else "250 sync.test")
        elif verb == b"MAIL":
            mail, rcpt = line[10:].decode(errors="replace"), []
            connection.reply("250 2.1.0 Ok")
        elif verb == b"RCPT":
            rcpt.append(line[8:].decode(errors="replace"))
            connection.reply("250 2.1.5 Ok")
        elif verb == b"DATA":
            connection.reply("354 End data with <CR><LF>.<CR><LF>")
            content = b""
            while True:
                data = connection.line()
                if data is None:
                    return
                if data == b".":
                    break
                content += (data[1:] if data.startswith(b".") else data) + b"\r\n"
            with open(record, "a") as out:
                out.write(json.dumps({"mail": mail, "rcpt": rcpt, "content": base64.b64encode(content).decode()}) + "\n")
            connection.reply("250 2.0.0 Ok: queued as 5YNC")
        elif verb == b"RSET":
            mail, rcpt = None, []
            connection.reply("250 2.0.0 Ok")
        elif verb == b"NOOP":
            connection.reply("250 2.0.0 Ok")
        elif verb == b"QUIT":
            connection.reply("221 2.0.0 Bye")
            return
        else:
            connection.reply("502 5.5.2 Error: command not recognized")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", required=True)
    parser.add_argument("--settle", type=float, default=0.05)
    options = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((options.host, options.port))
    listener.listen(8)
    print("READY", flush=True)
    while True:
        sock, _ = listener.accept()
        try:
            serve(Connection(sock, options.settle), options.record)
        except (SynchronizationError, OSError):
            pass
        finally:
            sock.close()


if __name__ == "__main__":
    main()
