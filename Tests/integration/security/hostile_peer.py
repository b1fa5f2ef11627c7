#!/usr/bin/python3
"""An upstream SMTP server that misbehaves on purpose, for the hostile-input suite.

Prints "READY" once it listens; stops on SIGTERM/SIGINT. Every line it receives is appended to
--record as {"line": TEXT} (JSON lines), so a test sees exactly what reached the upstream. It speaks
just enough SMTP to carry a session: 250 to commands, 354 to DATA, 250 after a strict CRLF.CRLF.

  --greeting-delay S       send the 220 greeting only after S seconds
  --offer-starttls         list STARTTLS in the EHLO reply
  --starttls-reply TEXT    the reply to STARTTLS (default "454 4.7.0 TLS not available")
  --data-reply TEXT        the reply to DATA (default "354 go ahead")
  --ehlo-reply KIND        answer EHLO with a broken reply: "mixed" (250-/251 codes), "lines"
                           (10 000 continuation lines) or "huge" (one line of 1 MB)
"""
import argparse
import json
import signal
import socket
import sys
import threading
import time


def broken_ehlo(kind):
    if kind == "mixed":
        return b"250-upstream.test\r\n251-PIPELINING\r\n250 8BITMIME\r\n"
    if kind == "lines":
        return b"250-upstream.test\r\n" + b"250-X-FILLER\r\n" * 10_000 + b"250 8BITMIME\r\n"
    if kind == "huge":
        return b"250 " + b"x" * (1 << 20) + b"\r\n"
    raise ValueError(kind)


class Session(threading.Thread):
    def __init__(self, connection, options, record_lock):
        super().__init__(daemon=True)
        self.connection = connection
        self.options = options
        self.record_lock = record_lock

    def record(self, line):
        with self.record_lock, open(self.options.record, "a") as out:
            out.write(json.dumps({"line": line.decode("latin-1")}) + "\n")

    def send(self, data):
        try:
            self.connection.sendall(data)
        except OSError:
            pass

    def run(self):
        options = self.options
        if options.greeting_delay:
            time.sleep(options.greeting_delay)
        self.send(b"220 upstream.test ESMTP hostile\r\n")
        buffer = b""
        in_data = False
        try:
            while True:
                chunk = self.connection.recv(65536)
                if not chunk:
                    return
                buffer += chunk
                while b"\r\n" in buffer:
                    line, buffer = buffer.split(b"\r\n", 1)
                    self.record(line)
                    if in_data:
                        if line == b".":
                            in_data = False
                            self.send(b"250 2.0.0 Ok: queued\r\n")
                        continue
                    verb = line.split(b" ", 1)[0].upper()
                    if verb == b"EHLO":
                        if options.ehlo_reply:
                            self.send(broken_ehlo(options.ehlo_reply))
                        else:
                            extra = b"250-STARTTLS\r\n" if options.offer_starttls else b""
                            self.send(b"250-upstream.test\r\n250-PIPELINING\r\n" + extra + b"250 8BITMIME\r\n")
                    elif verb == b"STARTTLS":
                        self.send(options.starttls_reply.encode() + b"\r\n")
                    elif verb == b"DATA":
                        self.send(options.data_reply.encode() + b"\r\n")
                        in_data = options.data_reply.startswith("354")
                    elif verb == b"QUIT":
                        self.send(b"221 2.0.0 Bye\r\n")
                        return
                    else:
                        self.send(b"250 2.0.0 Ok\r\n")
        except OSError:
            return
        finally:
            self.connection.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", required=True)
    parser.add_argument("--greeting-delay", type=float, default=0)
    parser.add_argument("--offer-starttls", action="store_true")
    parser.add_argument("--starttls-reply", default="454 4.7.0 TLS not available")
    parser.add_argument("--data-reply", default="354 go ahead")
    parser.add_argument("--ehlo-reply", choices=["mixed", "lines", "huge"])
    options = parser.parse_args()

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", options.port))
    listener.listen(64)
    listener.settimeout(0.2)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    record_lock = threading.Lock()
    print("READY", flush=True)
    while not stop.is_set():
        try:
            connection, _ = listener.accept()
        except socket.timeout:
            continue
        Session(connection, options, record_lock).start()
    listener.close()


if __name__ == "__main__":
    sys.exit(main())
