#!/usr/bin/python3
"""aiosmtpd as an upstream of the interop matrix (run as a subprocess by aiosmtpd_upstream() below).

It is the witness of the upstream leg: every command it receives is written to --record as
{"command": VERB, "session": N} when it arrives, and every accepted message as
{"message": base64 of the content exactly as received, "session": N, "tls": bool}. It offers
PIPELINING, STARTTLS (with --tls-cert/--tls-key) and AUTH PLAIN/LOGIN for one user (with
--auth-user/--auth-password; not required, plaintext allowed). Prints READY once it listens.
"""
import argparse
import base64
import itertools
import json
import signal
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

VERBS = ("EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "VRFY", "QUIT")


class Recorder:
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.sessions = itertools.count(1)

    def write(self, entry):
        with self.lock, open(self.path, "a", encoding="utf-8") as record:
            record.write(json.dumps(entry) + "\n")


class Handler:
    def __init__(self, recorder):
        self.recorder = recorder

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_DATA(self, server, session, envelope):
        self.recorder.write({
            "message": base64.b64encode(envelope.original_content or b"").decode(),
            "session": server.witness_session,
            "tls": server.transport.get_extra_info("ssl_object") is not None,
        })
        return "250 2.0.0 Ok: queued"


class WitnessSMTP(SMTP):
    """aiosmtpd's server, writing down each command before it handles it."""

    def __init__(self, handler, recorder, **kwargs):
        super().__init__(handler, **kwargs)
        self.recorder = recorder
        self.witness_session = next(recorder.sessions)


def _witnessed(verb):
    handle = getattr(SMTP, f"smtp_{verb}")

    async def smtp_verb(self, arg):
        self.recorder.write({"command": verb, "session": self.witness_session})
        return await handle(self, arg)

    return smtp_verb


for _verb in VERBS:
    if hasattr(SMTP, f"smtp_{_verb}"):
        setattr(WitnessSMTP, f"smtp_{_verb}", _witnessed(_verb))


class WitnessController(Controller):
    def __init__(self, handler, recorder, **kwargs):
        self.recorder = recorder
        super().__init__(handler, **kwargs)

    def factory(self):
        return WitnessSMTP(self.handler, self.recorder, **self.SMTP_kwargs)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", required=True)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--auth-user")
    parser.add_argument("--auth-password")
    options = parser.parse_args()

    recorder = Recorder(options.record)
    kwargs = {"hostname": "127.0.0.1", "port": options.port, "ident": "aiosmtpd upstream",
              # Named, or aiosmtpd calls socket.getfqdn() per connection on its event loop (see upstream_peer.py).
              "server_hostname": "localhost"}
    if options.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(options.tls_cert, options.tls_key)
        kwargs.update(tls_context=context, require_starttls=False)
    if options.auth_user:
        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == options.auth_user
                  and auth_data.password.decode() == options.auth_password)
            return AuthResult(success=ok, handled=False)
        kwargs.update(authenticator=authenticator, auth_require_tls=False)
    controller = WitnessController(Handler(recorder), recorder, **kwargs)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    controller.start()
    print("READY", flush=True)
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    sys.exit(main())
