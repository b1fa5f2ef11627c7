#!/usr/bin/python3
"""Programmable upstreams for the proxy's end-to-end tests (run as a subprocess by conftest.py).

Prints "READY" once it listens and stops on SIGTERM/SIGINT. Two kinds:

--kind aiosmtpd (default): an aiosmtpd server that records every accepted message, content included
  (base64), as a JSON line in --record. It never offers CHUNKING (aiosmtpd has no BDAT), and offers
  PIPELINING only with --pipelining. Faults, each with an RFC 3463 enhanced code:
    --reject-rcpt ADDR     550 5.1.1 for that recipient        --tempfail-rcpt ADDR  450 4.2.0
    --reject-data          554 5.7.1 after the end of data     --tempfail-data       451 4.3.0
    --auth-user/--auth-password  offer AUTH PLAIN/LOGIN and require it (no TLS needed)
    --xclient ATTRS        offer "XCLIENT ATTRS" in EHLO and record each XCLIENT line as
                           {"xclient": LINE}; answered with --xclient-reply (default a 220 greeting,
                           as Postfix does; the session is not reset)
    --tls-cert/--tls-key   offer STARTTLS with this certificate; each message's record then says
                           what TLS it came over ("tls": version, cipher and the SNI the client sent)
--kind strict: a raw server as strict as OpenSMTPD about identification: a second EHLO or HELO on
  one session gets `503 5.5.1 Already identified` (RFC 5321 §4.1.4 allows it), and so does MAIL
  before one. It offers PIPELINING and 8BITMIME, and STARTTLS with --tls-cert/--tls-key (after
  which it expects EHLO again, RFC 3207 §4.2). It records every line it receives as {"line": L},
  every message as {"content": base64}, and {"closed": true, "quit": bool} at each session's end,
  so a test sees on the wire what the proxy sent.
--kind drop-in-data: a minimal raw server that answers EHLO/MAIL/RCPT/DATA, then closes the
  connection without a reply after --drop-after content octets; it records
  {"dropped": true, "octets": N} in --record, so a test can see nothing was delivered.
"""
import argparse
import asyncio
import base64
import json
import signal
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Handler:
    def __init__(self, options):
        self.options = options
        self.lock = threading.Lock()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.options.pipelining:
            responses.insert(1, "250-PIPELINING")
        if self.options.xclient:
            responses.insert(1, f"250-XCLIENT {self.options.xclient}")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.options.reject_rcpt:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if address in self.options.tempfail_rcpt:
            return f"450 4.2.0 <{address}>: Recipient address rejected: Greylisted"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        if self.options.reject_data:
            return "554 5.7.1 Message rejected: content policy violation"
        if self.options.tempfail_data:
            return "451 4.3.0 Temporary failure, try again later"
        self.record({
            "mail_from": envelope.mail_from,
            "mail_options": envelope.mail_options,
            "rcpt_tos": envelope.rcpt_tos,
            "content": base64.b64encode(envelope.original_content or b"").decode(),
            "auth": bool(session.authenticated),
            "tls": self.tls_facts(server),
        })
        return "250 2.0.0 Ok: queued as UP1234"

    def tls_facts(self, server):
        ssl_object = server.transport.get_extra_info("ssl_object") if server.transport else None
        if ssl_object is None:
            return None
        return {"version": ssl_object.version(), "cipher": ssl_object.cipher()[0],
                "sni": getattr(ssl_object, "sni", None)}

    def record(self, entry):
        if self.options.record:
            with self.lock, open(self.options.record, "a", encoding="utf-8") as record:
                record.write(json.dumps(entry) + "\n")


class XclientSMTP(SMTP):
    """aiosmtpd with a Postfix-style XCLIENT command that only records what it was told."""

    async def smtp_XCLIENT(self, arg):
        self.event_handler.record({"xclient": f"XCLIENT {arg or ''}".rstrip()})
        await self.push(self.event_handler.options.xclient_reply)


class XclientController(Controller):
    def factory(self):
        return XclientSMTP(self.handler, **self.SMTP_kwargs)


def run_aiosmtpd(options, stop):
    kwargs = {"hostname": options.host, "port": options.port, "ident": "aiosmtpd upstream",
              # Named, or aiosmtpd calls socket.getfqdn() per connection on its event loop (see
              # tools/soak.d/upstream.py).
              "server_hostname": "localhost"}
    if options.auth_user:
        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword)
                  and auth_data.login.decode() == options.auth_user
                  and auth_data.password.decode() == options.auth_password)
            return AuthResult(success=ok, handled=False)
        kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=False)
    if options.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(options.tls_cert, options.tls_key)

        def remember_sni(ssl_object, name, _context):
            ssl_object.sni = name
        context.sni_callback = remember_sni
        kwargs.update(tls_context=context, require_starttls=False)
    controller = (XclientController if options.xclient else Controller)(Handler(options), **kwargs)
    controller.start()
    print("READY", flush=True)
    stop.wait()
    controller.stop()


def run_drop_in_data(options, stop):
    async def session(reader, writer):
        async def reply(text):
            writer.write(text.encode() + b"\r\n")
            await writer.drain()
        await reply("220 drop.test ESMTP")
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                verb = line[:4].upper()
                if verb == b"EHLO":
                    await reply("250-drop.test\r\n250-PIPELINING\r\n250 8BITMIME")
                elif verb == b"DATA":
                    await reply("354 go ahead")
                    received = 0
                    while received < options.drop_after:
                        chunk = await reader.read(options.drop_after - received)
                        if not chunk:
                            break
                        received += len(chunk)
                    with open(options.record, "a", encoding="utf-8") as record:
                        record.write(json.dumps({"dropped": True, "octets": received}) + "\n")
                    writer.transport.abort()
                    return
                elif verb == b"QUIT":
                    await reply("221 bye")
                    return
                else:
                    await reply("250 2.0.0 Ok")
        finally:
            writer.close()

    async def main():
        server = await asyncio.start_server(session, options.host, options.port)
        print("READY", flush=True)
        while not stop.is_set():
            await asyncio.sleep(0.1)
        server.close()

    asyncio.run(main())


def run_strict(options, stop):
    lock = threading.Lock()

    def record(entry):
        with lock, open(options.record, "a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")

    tls_context = None
    if options.tls_cert:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(options.tls_cert, options.tls_key)

    async def session(reader, writer):
        async def reply(text):
            writer.write(text.encode() + b"\r\n")
            await writer.drain()
        identified = False
        quit_seen = False
        await reply("220 strict.test ESMTP")
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                text = line.rstrip(b"\r\n").decode(errors="replace")
                record({"line": text})
                verb = text[:4].upper()
                if verb in ("EHLO", "HELO"):
                    if identified:
                        await reply("503 5.5.1 Already identified")
                        continue
                    identified = True
                    if verb == "HELO":
                        await reply("250 strict.test")
                    else:
                        offers = ["strict.test", "PIPELINING", "8BITMIME"]
                        if tls_context is not None and writer.get_extra_info("ssl_object") is None:
                            offers.append("STARTTLS")
                        await reply("\r\n".join(f"250-{o}" for o in offers[:-1]) + f"\r\n250 {offers[-1]}")
                elif verb == "STAR" and tls_context is not None:
                    await reply("220 2.0.0 Ready to start TLS")
                    await writer.start_tls(tls_context)
                    identified = False
                elif not identified and verb in ("MAIL", "RCPT", "DATA"):
                    await reply("503 5.5.1 Error: send HELO/EHLO first")
                elif verb == "DATA":
                    await reply("354 End data with <CR><LF>.<CR><LF>")
                    content = b""
                    while True:
                        data_line = await reader.readline()
                        if not data_line:
                            return
                        if data_line == b".\r\n":
                            break
                        content += data_line[1:] if data_line.startswith(b".") else data_line
                    record({"content": base64.b64encode(content).decode()})
                    await reply("250 2.0.0 Ok: queued as STRICT1")
                elif verb == "QUIT":
                    quit_seen = True
                    await reply("221 2.0.0 Bye")
                    return
                else:
                    await reply("250 2.0.0 Ok")
        finally:
            record({"closed": True, "quit": quit_seen})
            writer.close()

    async def main():
        server = await asyncio.start_server(session, options.host, options.port)
        print("READY", flush=True)
        while not stop.is_set():
            await asyncio.sleep(0.1)
        server.close()

    asyncio.run(main())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", choices=["aiosmtpd", "drop-in-data", "strict"], default="aiosmtpd")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", required=True)
    parser.add_argument("--pipelining", action="store_true")
    parser.add_argument("--reject-rcpt", action="append", default=[])
    parser.add_argument("--tempfail-rcpt", action="append", default=[])
    parser.add_argument("--reject-data", action="store_true")
    parser.add_argument("--tempfail-data", action="store_true")
    parser.add_argument("--auth-user")
    parser.add_argument("--auth-password")
    parser.add_argument("--drop-after", type=int, default=100)
    parser.add_argument("--xclient")
    parser.add_argument("--xclient-reply", default="220 upstream ESMTP XCLIENT accepted")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    options = parser.parse_args()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if options.kind == "aiosmtpd":
        run_aiosmtpd(options, stop)
    elif options.kind == "strict":
        run_strict(options, stop)
    else:
        run_drop_in_data(options, stop)


if __name__ == "__main__":
    sys.exit(main())
