#!/usr/bin/python3
"""The soak's upstream: an aiosmtpd server that records every message it accepts, and takes faults.

    upstream.py --port PORT --store FILE --auth-user U --auth-password P

Prints "READY" once it listens. Each accepted message is one JSON line appended to --store
({"message_id", "body_sha256", "size", "auth", "rcpt_tos"}), written with a single write(2) on an O_APPEND
descriptor *before* the 250 is sent. The kernel holds the line once write(2) returns, so a SIGKILL
right after it keeps the record; a restarted upstream appends to the same file. Hence: a client that
got 250 for a message has its line in the store (unless the proxy lied), and a message stored twice
was sent twice.

Faults, driven by signals so the soak needs no side channel:
  SIGUSR1  421 mode on: new connections get a 421 greeting; in open sessions MAIL, RCPT, DATA and
           the end of data get 421 (nothing stored) and the connection is closed after the reply.
  SIGUSR2  421 mode off.
  SIGSTOP/SIGCONT (sent by the soak) stall the whole process; SIGKILL and a restart on the same port
           simulate a crash.
SIGTERM/SIGINT stop it cleanly.

AUTH PLAIN and LOGIN are offered without TLS and are optional (a session may send mail without them):
the soak wants the proxy to relay AUTH, not a server that requires it. PIPELINING is offered.
"""
import argparse
import email.parser
import email.policy
import hashlib
import json
import os
import signal
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

SERVICE_UNAVAILABLE = "421 4.3.2 Service not available, closing transmission channel"


class Faults:
    """Set from the signal handlers (main thread), read by the server's event loop thread."""
    refusing = False


class Store:
    def __init__(self, path):
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.lock = threading.Lock()

    def append(self, entry):
        line = (json.dumps(entry, sort_keys=True) + "\n").encode()
        with self.lock:
            written = os.write(self.fd, line)
        if written != len(line):
            raise OSError(f"short write to the store ({written} of {len(line)} octets)")


def message_identity(content):
    """(Message-ID, SHA-256 of the body) of the content as received (CRLF line ends, unstuffed)."""
    head, separator, body = content.partition(b"\r\n\r\n")
    headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(head + b"\r\n\r\n")
    message_id = (headers.get("Message-ID") or "").strip()
    return message_id, hashlib.sha256(body if separator else b"").hexdigest()


class Handler:
    def __init__(self, store):
        self.store = store

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if Faults.refusing:
            return SERVICE_UNAVAILABLE
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if Faults.refusing:
            return SERVICE_UNAVAILABLE
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        if Faults.refusing:
            return SERVICE_UNAVAILABLE
        content = envelope.original_content or b""
        message_id, body_sha256 = message_identity(content)
        self.store.append({"message_id": message_id, "body_sha256": body_sha256, "size": len(content),
                           "auth": bool(session.authenticated), "rcpt_tos": envelope.rcpt_tos})
        return "250 2.0.0 Ok: queued"


class FaultySMTP(SMTP):
    async def _handle_client(self):
        if Faults.refusing:
            await self.push(SERVICE_UNAVAILABLE)
            return
        await super()._handle_client()

    async def push(self, status):
        await super().push(status)
        # RFC 5321 4.2.2: 421 means the server closes the channel; aiosmtpd alone would read on.
        text = status.decode() if isinstance(status, bytes) else status
        if text.startswith("421") and self.transport is not None:
            self.transport.close()

    async def smtp_DATA(self, arg):
        if Faults.refusing:
            await self.push(SERVICE_UNAVAILABLE)
            return
        await super().smtp_DATA(arg)


class FaultyController(Controller):
    def factory(self):
        return FaultySMTP(self.handler, **self.SMTP_kwargs)

    def _create_server(self):
        # The proxy holds up to ~1000 upstream connections and reconnects them all at once after a
        # restart: asyncio's default listen queue of 100 would turn that storm into SYN retries.
        return self.loop.create_server(self._factory_invoker, host=self.hostname, port=self.port,
                                       backlog=4096)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--auth-user", required=True)
    parser.add_argument("--auth-password", required=True)
    options = parser.parse_args()

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login.decode() == options.auth_user
              and auth_data.password.decode() == options.auth_password)
        return AuthResult(success=ok, handled=False)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGUSR1, lambda *_: setattr(Faults, "refusing", True))
    signal.signal(signal.SIGUSR2, lambda *_: setattr(Faults, "refusing", False))

    controller = FaultyController(
        Handler(Store(options.store)), hostname=options.host, port=options.port, ident="soak upstream",
        # Without a name of its own aiosmtpd calls socket.getfqdn() for every connection, on its event
        # loop. Where the host's name is in no /etc/hosts (a fresh debootstrap machine) that is a DNS
        # query, and a resolver that throttles makes it wait 5 s: 300 lookups took 55 s there, and
        # every session of the upstream waited with them (issue 13's "stuck" sessions).
        server_hostname="soak-upstream.test",
        authenticator=authenticator, auth_required=False, auth_require_tls=False,
        data_size_limit=0, timeout=600)
    controller.start()
    print("READY", flush=True)
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    sys.exit(main())
