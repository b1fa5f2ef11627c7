#!/usr/bin/python3
"""A programmable aiosmtpd upstream for the integration tests (run as a subprocess).

It prints "READY" on stdout once it listens (after aiosmtpd's own start-up self-connection, so a
capture started afterwards sees only the test's traffic), records each accepted message as a JSON
line in --record, and stops on SIGTERM or SIGINT.

Fault injection (every reply carries an RFC 3463 enhanced status code):
  --reject-rcpt ADDR     550 5.1.1 for that recipient (repeatable)
  --greylist ADDR        450 4.2.0 greylisting for that recipient (repeatable)
  --reject-data          554 5.7.1 after the end of data
  --auth-user/--auth-password   offer AUTH PLAIN/LOGIN and require it
  --tls-cert/--tls-key   offer STARTTLS with this certificate
"""
import argparse
import json
import signal
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Handler:
    def __init__(self, options):
        self.options = options
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.options.reject_rcpt:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown in local recipient table"
        if address in self.options.greylist:
            return f"450 4.2.0 <{address}>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.html"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        if self.options.reject_data:
            return "554 5.7.1 Message rejected: content policy violation"
        if self.options.record:
            with self.lock, open(self.options.record, "a", encoding="utf-8") as record:
                record.write(json.dumps({
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": envelope.rcpt_tos,
                    "size": len(envelope.original_content or b""),
                }) + "\n")
        return "250 2.0.0 Ok: queued as 4F2A1B"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--reject-rcpt", action="append", default=[])
    parser.add_argument("--greylist", action="append", default=[])
    parser.add_argument("--reject-data", action="store_true")
    parser.add_argument("--auth-user")
    parser.add_argument("--auth-password")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--record")
    options = parser.parse_args()

    kwargs = {"hostname": options.host, "port": options.port, "ident": "aiosmtpd test peer",
              # Named, or aiosmtpd calls socket.getfqdn() per connection on its event loop (see
              # tools/soak.d/upstream.py).
              "server_hostname": "localhost"}
    if options.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(options.tls_cert, options.tls_key)
        kwargs["tls_context"] = context
        kwargs["require_starttls"] = False
    if options.auth_user:
        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword)
                  and auth_data.login.decode() == options.auth_user
                  and auth_data.password.decode() == options.auth_password)
            return AuthResult(success=ok, handled=False)
        kwargs["authenticator"] = authenticator
        kwargs["auth_required"] = True
        kwargs["auth_require_tls"] = False

    controller = Controller(Handler(options), **kwargs)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("READY", flush=True)
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    sys.exit(main())
