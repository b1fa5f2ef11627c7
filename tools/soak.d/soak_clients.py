"""The soak's clients: asyncio SMTP sessions of every kind, and the ledger of what each was told.

Each of the `sessions` slots runs one client connection after another until told to stop, so the
proxy holds about that many sessions at once. A slot picks a behaviour for each connection (KINDS,
weighted): plain senders with RSET, pipelined senders, slow senders that dribble bytes, STARTTLS
senders, AUTH PLAIN/LOGIN senders (a few with a wrong password), and clients that vanish before the
greeting, mid-command or mid-DATA (FIN or RST).

The Ledger is the client-side truth the checks compare with the upstream's store and the proxy's
transcripts: every connection's source address and port, and every message's fate as its client saw
it:
  accepted   250 after the end of data              -> must be stored exactly once, body intact
  withheld   the client never sent the end of data  -> must not be stored at all
  uncertain  end of data sent, no 250 (refused, 4xx, connection lost) -> stored at most once
"""
import asyncio
import base64
import collections
import hashlib
import random
import socket
import ssl
import struct
import time

REPLY_TIMEOUT = 150  # seconds; far above the soak's stalls (the upstream stops for at most ~10 s)
STUCK_AFTER = 30     # a session still waiting this long for a reply when the load stops is stuck


class Closed(Exception):
    """The proxy closed the connection (EOF, reset, or a 421 before it closes)."""


class ReplyTimeout(Exception):
    pass


class Ledger:
    def __init__(self, run_id):
        self.run_id = run_id
        self.connections = []                 # (source ip, source port, kind)
        self.connect_failures = collections.Counter()
        self.messages = {}                    # Message-ID -> {"state", "sha256", "code"}
        self.stats = collections.Counter()
        self.reply_timeouts = []              # (kind, source, command) of replies never received
        self.unexpected = []                  # replies that no correct proxy gives
        self.aborted_at_stop = []             # what the sessions aborted at the end of a phase were doing
        self.unhealthy_upstream = []          # a fault still in force when a phase ended (a soak bug)
        self.sequence = 0

    def new_message_id(self, slot):
        self.sequence += 1
        return f"<{self.run_id}.{slot}.{self.sequence}@soak.test>"

    def message(self, message_id, sha256):
        self.messages[message_id] = {"state": "withheld", "sha256": sha256, "code": None}

    def settle(self, message_id, state, code=None):
        entry = self.messages[message_id]
        entry["state"] = state
        entry["code"] = code


def _line_pool():
    """Body lines, made once: lone dots (stuffed, or they would end the message), lines starting
    with dots, empty lines and ordinary text. Messages pick from them: cheap enough for 1000 clients."""
    rng = random.Random(5321)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,-"
    pool = [".", ".", "..", "...", ". leading dot", "", ""]
    pool += ["." * rng.randint(1, 3) + "".join(rng.choices(alphabet, k=rng.randint(0, 40))) for _ in range(40)]
    pool += ["".join(rng.choices(alphabet, k=rng.randint(1, 76))) for _ in range(900)]
    return [line.encode() for line in pool]


LINES = _line_pool()


def build_message(message_id, rng, size):
    """(wire octets with the end of data, SHA-256 of the body as the upstream must see it)."""
    header = (f"From: Soak Sender <sender@client.soak.test>\r\n"
              f"To: <rcpt@upstream.soak.test>\r\n"
              f"Subject: soak message {message_id}\r\n"
              f"Date: Sun, 29 Nov 2026 12:00:00 +0000\r\n"
              f"Message-ID: {message_id}\r\n"
              f"MIME-Version: 1.0\r\n"
              f"Content-Type: text/plain; charset=us-ascii\r\n\r\n").encode()
    lines = rng.choices(LINES, k=max(1, size // 40))
    body = b"\r\n".join(lines) + b"\r\n"
    stuffed = b"\r\n".join(b"." + line if line.startswith(b".") else line for line in lines) + b"\r\n"
    return header + stuffed + b".\r\n", hashlib.sha256(body).hexdigest()


def tls_context():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # --tls-cert auto is self-signed
    return context


class Session:
    def __init__(self, ledger, kind, source_ip):
        self.ledger = ledger
        self.kind = kind
        self.source_ip = source_ip
        self.reader = None
        self.writer = None
        self.waiting_since = None
        self.waiting_for = None
        self.source = None

    async def connect(self, host, port):
        self.reader, self.writer = await asyncio.open_connection(host, port, local_addr=(self.source_ip, 0))
        ip, source_port = self.writer.get_extra_info("sockname")[:2]
        self.source = (ip, source_port)
        self.ledger.connections.append((ip, source_port, self.kind))

    async def write(self, data, dribble=None):
        """Write data, or with dribble=(rng, largest piece, longest pause) in small pieces."""
        try:
            if dribble is None:
                self.writer.write(data)
                await self.writer.drain()
                return
            rng, piece, gap = dribble
            offset = 0
            while offset < len(data):
                size = rng.randint(1, piece)
                self.writer.write(data[offset:offset + size])
                await self.writer.drain()
                offset += size
                await asyncio.sleep(rng.uniform(0, gap))
        except (ConnectionError, OSError) as error:
            raise Closed(str(error)) from error

    async def reply(self, what):
        """(code, [lines]) of the next reply; Closed on EOF, and after a 421 (the proxy closes)."""
        self.waiting_since, self.waiting_for = time.monotonic(), what
        lines = []
        try:
            while True:
                try:
                    line = await asyncio.wait_for(self.reader.readline(), REPLY_TIMEOUT)
                except asyncio.TimeoutError:
                    self.ledger.reply_timeouts.append((self.kind, self.source, what))
                    raise ReplyTimeout(what)
                except (ConnectionError, OSError, ssl.SSLError) as error:
                    raise Closed(str(error)) from error
                if not line.endswith(b"\r\n"):
                    raise Closed("EOF")
                lines.append(line[:-2].decode("utf-8", "replace"))
                if len(line) < 4 or line[3:4] != b"-":
                    break
        finally:
            self.waiting_since = None
        code = int(lines[-1][:3]) if lines[-1][:3].isdigit() else 0
        self.ledger.stats[f"reply_{code}"] += 1
        if code == 421:
            raise Closed("421")
        return code, lines

    async def command(self, line, dribble=None, label=None):
        """Sends a command line; `label` names it in reports instead of its first word (a SASL
        response is a secret: it is never printed)."""
        await self.write(line.encode() + b"\r\n", dribble)
        return await self.reply(label or line.split(" ")[0])

    async def starttls(self):
        await self.writer.start_tls(tls_context(), server_hostname="localhost")

    def vanish(self, rst):
        if self.writer is None:
            return
        if rst:
            sock = self.writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.writer.transport.abort()
        else:
            self.writer.close()

    def close(self):
        if self.writer is not None:
            self.writer.close()


class Behaviour:
    """One client connection's script. Subclasses override `converse`."""
    kind = "plain"
    weight = 1

    def __init__(self, config, ledger, slot, rng, stopping):
        self.config = config
        self.ledger = ledger
        self.slot = slot
        self.rng = rng
        self.stopping = stopping
        self.session = Session(ledger, self.kind, config.source_ip(slot))
        self.dribble = None

    async def run(self):
        try:
            await self.session.connect(self.config.host, self.config.port)
        except OSError as error:
            self.ledger.connect_failures[type(error).__name__] += 1
            await asyncio.sleep(0.5)
            return
        self.ledger.stats[f"session_{self.kind}"] += 1
        try:
            code, _ = await self.session.reply("greeting")
            if code != 220:
                self.ledger.stats[f"greeting_{code}"] += 1
                await self.quit()
                return
            await self.converse()
        except Closed:
            self.ledger.stats["closed_by_proxy"] += 1
        except ReplyTimeout:
            self.ledger.stats["reply_timeout"] += 1
        finally:
            self.session.close()

    async def converse(self):
        if not await self.ehlo():
            return
        await self.messages()
        await self.quit()

    async def ehlo(self):
        code, lines = await self.session.command(f"EHLO client{self.slot}.soak.test", self.dribble)
        self.extensions = {line[4:].split(" ")[0].upper(): line[4:] for line in lines[1:]}
        return code == 250

    async def quit(self):
        try:
            await self.session.command("QUIT", self.dribble)
        except (Closed, ReplyTimeout):
            pass

    async def messages(self, count=None):
        count = count or self.rng.randint(1, 4)
        for number in range(count):
            if self.stopping.is_set() and number:
                return
            if self.rng.random() < 0.2:
                await self.abandoned_transaction()
            await self.send_message()
            if self.rng.random() < 0.5:
                await self.session.command("RSET", self.dribble)
            await pause(self.stopping, self.rng.uniform(0, self.config.think))

    async def abandoned_transaction(self):
        """MAIL and RCPT, then RSET: nothing may reach the upstream's store."""
        await self.session.command(f"MAIL FROM:<abandoned{self.slot}@client.soak.test>", self.dribble)
        await self.session.command("RCPT TO:<rcpt@upstream.soak.test>", self.dribble)
        await self.session.command("RSET", self.dribble)

    def envelope(self):
        recipients = [f"RCPT TO:<rcpt{n}@upstream.soak.test>" for n in range(self.rng.randint(1, 3))]
        return [f"MAIL FROM:<sender{self.slot}@client.soak.test>", *recipients, "DATA"]

    def message_size(self):
        return self.rng.choice((300, 1000, 4000, 12000, 40000)) if self.rng.random() < 0.97 else 300000

    async def send_message(self):
        message_id = self.ledger.new_message_id(self.slot)
        wire, sha256 = build_message(message_id, self.rng, self.message_size())
        self.ledger.message(message_id, sha256)
        if not await self.open_transaction():
            self.ledger.settle(message_id, "withheld")
            return False
        try:
            if self.dribble is not None:
                await self.session.write(wire[:-3], self.dribble)
                wire = wire[-3:]
            # From here the proxy may have the whole message: whatever happens next, it may be stored.
            self.ledger.settle(message_id, "uncertain", "no reply")
            await self.session.write(wire, self.dribble)
            code, _ = await self.session.reply("end of data")
        except (Closed, ReplyTimeout):
            self.ledger.settle(message_id, "uncertain", "lost")
            raise
        self.ledger.settle(message_id, "accepted" if code == 250 else "uncertain", code)
        return code == 250

    async def open_transaction(self):
        """Sends the envelope and DATA; True once the proxy said 354."""
        accepted = 0
        # Some clients take their time between commands (latency, a busy MTA), so that the upstream's
        # faults also land between MAIL and RCPT, with the transaction open on both legs.
        hesitant = self.rng.random() < 0.3
        for line in self.envelope():
            if hesitant and not line.startswith("MAIL"):
                await asyncio.sleep(self.rng.uniform(0, 6))
            if line == "DATA" and accepted == 0:
                # The proxy answers DATA without a recipient 554; say it, but expect no 354.
                code, _ = await self.session.command(line, self.dribble)
                if code == 354:
                    self.ledger.unexpected.append((self.kind, self.session.source, "354 to DATA without recipients"))
                return code == 354
            code, _ = await self.session.command(line, self.dribble)
            if line.startswith("MAIL") and code != 250:
                return False
            if line.startswith("RCPT") and code == 250:
                accepted += 1
            self.check_in_sequence(line, code)
        return code == 354

    def check_in_sequence(self, line, code):
        """After 250 to MAIL, a 503 (bad sequence) to RCPT means the upstream lost the transaction
        the proxy told the client was open: a desynchronised session."""
        if line.startswith("RCPT") and code == 503:
            self.ledger.unexpected.append((self.kind, self.session.source, "503 to RCPT after 250 to MAIL"))


class Plain(Behaviour):
    kind = "plain"
    weight = 30


class Pipelined(Behaviour):
    """MAIL, every RCPT and DATA in one write (RFC 2920), and the end of data with the next group."""
    kind = "pipelined"
    weight = 15

    async def messages(self, count=None):
        count = self.rng.randint(2, 5)
        pending = None  # (message id, wire) whose end of data goes out with the next group
        for number in range(count + 1):
            last = number == count or (self.stopping.is_set() and number)
            group = b""
            if pending is not None:
                group += pending[1]
            envelope = [] if last else self.envelope()
            if last:
                group += b"QUIT\r\n"
            else:
                group += ("\r\n".join(envelope) + "\r\n").encode()
            message = None
            if not last:
                message_id = self.ledger.new_message_id(self.slot)
                wire, sha256 = build_message(message_id, self.rng, self.message_size())
                self.ledger.message(message_id, sha256)
                message = (message_id, wire)
            try:
                if pending is not None:
                    self.ledger.settle(pending[0], "uncertain", "no reply")
                await self.session.write(group)
                if pending is not None:
                    code, _ = await self.session.reply("end of data")
                    self.ledger.settle(pending[0], "accepted" if code == 250 else "uncertain", code)
                    pending = None
                if last:
                    await self.session.reply("QUIT")
                    return
                codes = [(await self.session.reply(line.split(" ")[0]))[0] for line in envelope]
                if codes[0] == 250:
                    for line, code in zip(envelope, codes):
                        self.check_in_sequence(line, code)
            except (Closed, ReplyTimeout):
                if pending is not None:
                    self.ledger.settle(pending[0], "uncertain", "lost")
                raise
            if codes[-1] == 354:
                if not any(code == 250 for code in codes[1:-1]):
                    self.ledger.unexpected.append((self.kind, self.session.source, "354 to DATA without recipients"))
                pending = message
            else:
                self.ledger.settle(message[0], "withheld")
            await pause(self.stopping, self.rng.uniform(0, self.config.think))

    async def converse(self):
        if not await self.ehlo():
            return
        if "PIPELINING" not in self.extensions:
            self.ledger.unexpected.append((self.kind, self.session.source, "no PIPELINING in EHLO"))
            await self.quit()
            return
        await self.messages()


class Slow(Behaviour):
    """Dribbles every command and the content a few octets at a time."""
    kind = "slow"
    weight = 10

    def __init__(self, *args):
        super().__init__(*args)
        self.dribble = (self.rng, 16, 0.1)  # ~160 octets/s: slow, yet above any sane minimum rate

    def message_size(self):
        return self.rng.choice((300, 1000, 2000))

    async def messages(self, count=None):
        await super().messages(self.rng.randint(1, 2))


class StartTLS(Behaviour):
    kind = "starttls"
    weight = 15

    async def converse(self):
        if not await self.ehlo():
            return
        if "STARTTLS" not in self.extensions:
            self.ledger.unexpected.append((self.kind, self.session.source, "no STARTTLS in EHLO"))
            await self.quit()
            return
        code, _ = await self.session.command("STARTTLS")
        if code != 220:
            self.ledger.stats[f"starttls_{code}"] += 1
            await self.quit()
            return
        try:
            await self.session.starttls()
        except (ssl.SSLError, ConnectionError, OSError) as error:
            self.ledger.stats["tls_handshake_failed"] += 1
            raise Closed(str(error)) from error
        self.ledger.stats["tls_established"] += 1
        if not await self.ehlo():
            return
        await self.after_tls()
        await self.quit()

    async def after_tls(self):
        await self.messages()


class Auth(Behaviour):
    """AUTH PLAIN (with and without an initial response) or LOGIN, over plaintext or after STARTTLS."""
    kind = "auth"
    weight = 15

    async def converse(self):
        if not await self.ehlo():
            return
        if self.rng.random() < 0.3 and "STARTTLS" in self.extensions:
            code, _ = await self.session.command("STARTTLS")
            if code != 220:
                await self.quit()
                return
            try:
                await self.session.starttls()
            except (ssl.SSLError, ConnectionError, OSError) as error:
                self.ledger.stats["tls_handshake_failed"] += 1
                raise Closed(str(error)) from error
            if not await self.ehlo():
                return
        if "AUTH" not in self.extensions:
            self.ledger.unexpected.append((self.kind, self.session.source, "no AUTH in EHLO"))
            await self.quit()
            return
        wrong = self.rng.random() < 0.1
        password = self.config.wrong_password if wrong else self.config.password
        code = await self.authenticate(self.config.user, password)
        self.ledger.stats[f"auth_{'wrong' if wrong else 'right'}_{code}"] += 1
        if wrong and code == 235:
            self.ledger.unexpected.append((self.kind, self.session.source, "235 to a wrong password"))
        await self.messages()
        await self.quit()

    async def authenticate(self, user, password):
        mechanism = self.rng.choice(("plain-initial", "plain", "login", "login-initial"))
        b64 = lambda data: base64.b64encode(data.encode()).decode()

        async def think():
            # A client that takes its time (a password prompt) keeps the exchange open for a while,
            # so the upstream's faults also land in the middle of SASL exchanges.
            await asyncio.sleep(self.rng.uniform(0, 1.5))

        if mechanism == "plain-initial":
            code, _ = await self.session.command(f"AUTH PLAIN {b64(chr(0) + user + chr(0) + password)}",
                                                 label="AUTH PLAIN with an initial response")
            return code
        if mechanism == "plain":
            code, _ = await self.session.command("AUTH PLAIN")
            if code != 334:
                return code
            await think()
            code, _ = await self.session.command(b64(chr(0) + user + chr(0) + password), label="PLAIN response")
            return code
        if mechanism == "login":
            code, _ = await self.session.command("AUTH LOGIN")
            if code != 334:
                return code
            await think()
            code, _ = await self.session.command(b64(user), label="LOGIN user")
        else:
            code, _ = await self.session.command(f"AUTH LOGIN {b64(user)}", label="AUTH LOGIN with the user")
        if code != 334:
            return code
        await think()
        code, _ = await self.session.command(b64(password), label="LOGIN password")
        return code


class Vanish(Behaviour):
    """Disappears (FIN or RST): before the greeting, mid-command, mid-DATA, or one octet before the end
    of data ("\\r\\n." sent, the final CRLF never). A message whose end of data was never sent must
    not be delivered."""
    kind = "vanish"
    weight = 15

    async def run(self):
        where = self.rng.choice(("connect", "command", "data", "data", "before-dot", "tls-data"))
        if where == "connect":
            try:
                await self.session.connect(self.config.host, self.config.port)
            except OSError as error:
                self.ledger.connect_failures[type(error).__name__] += 1
                return
            self.ledger.stats["session_vanish"] += 1
            self.ledger.stats["vanish_connect"] += 1
            self.ledger.connections[-1] = (*self.session.source, "vanish-connect")
            self.session.vanish(rst=self.rng.random() < 0.5)
            return
        self.where = where
        await super().run()

    async def converse(self):
        rst = self.rng.random() < 0.5
        if not await self.ehlo():
            return
        if self.where == "tls-data" and "STARTTLS" in self.extensions:
            code, _ = await self.session.command("STARTTLS")
            if code != 220:
                return
            await self.session.starttls()
            if not await self.ehlo():
                return
        if self.rng.random() < 0.5:
            await self.send_message()
        self.ledger.stats[f"vanish_{self.where}"] += 1
        if self.where == "command":
            await self.session.write(self.rng.choice((b"MAIL FROM:<vanish@", b"RCPT TO", b"EHLO half", b"N")))
            await asyncio.sleep(self.rng.uniform(0, 0.5))
            self.session.vanish(rst)
            return
        message_id = self.ledger.new_message_id(self.slot)
        wire, sha256 = build_message(message_id, self.rng, self.message_size())
        self.ledger.message(message_id, sha256)
        if not await self.open_transaction():
            return
        if self.where == "before-dot":
            cut = len(wire) - 3       # everything but ".\r\n" after the last CRLF ...
            part = wire[:cut] + b"."  # ... then the dot, and never the CRLF that would end the data
        else:
            part = wire[:self.rng.randint(0, len(wire) - 4)]
        await self.session.write(part)
        await asyncio.sleep(self.rng.uniform(0, 0.5))
        self.session.vanish(rst)


async def pause(stopping, seconds):
    """Sleeps, but wakes up when the load stops."""
    try:
        await asyncio.wait_for(stopping.wait(), seconds)
    except asyncio.TimeoutError:
        pass


KINDS = (Plain, Pipelined, Slow, StartTLS, Auth, Vanish)


async def slot_loop(config, ledger, slot, stopping, active):
    rng = random.Random(f"{ledger.run_id}-{slot}")
    await pause(stopping, rng.uniform(0, config.ramp))
    kinds = [kind for kind in KINDS if kind.kind in config.kinds]
    weights = [kind.weight for kind in kinds]
    while not stopping.is_set():
        behaviour = rng.choices(kinds, weights)[0](config, ledger, slot, rng, stopping)
        active[slot] = behaviour.session
        try:
            await behaviour.run()
        except asyncio.CancelledError:
            # Abort, never close: close() would flush a buffered end of data the ledger calls withheld.
            behaviour.session.vanish(rst=True)
            raise
        except (Closed, ReplyTimeout):
            pass
        except Exception as error:  # a client bug must not end the soak silently
            ledger.stats[f"client_error_{type(error).__name__}"] += 1
            behaviour.session.close()
        finally:
            active.pop(slot, None)
        await pause(stopping, rng.uniform(0, config.think))


async def run_load(config, ledger, stopping, finish_timeout):
    """Runs every slot until `stopping` is set, then gives open sessions finish_timeout seconds to end
    and aborts the rest. Returns the sessions that were waiting over STUCK_AFTER s for a reply."""
    active = {}
    tasks = [asyncio.create_task(slot_loop(config, ledger, slot, stopping, active))
             for slot in range(config.sessions)]
    await stopping.wait()
    stop = time.monotonic()
    done, pending = await asyncio.wait(tasks, timeout=finish_timeout)
    now = time.monotonic()
    ledger.stop_timing = [round(now - stop, 1)]
    ledger.stats["aborted_at_stop"] += len(pending)
    ledger.aborted_at_stop += [f"{session.kind}:" + (f"waiting {now - session.waiting_since:.0f}s for {session.waiting_for}"
                                                     if session.waiting_since is not None else "sending")
                               for session in active.values()]
    stuck = [(session.kind, session.source, session.waiting_for, round(now - session.waiting_since))
             for session in active.values()
             if session.waiting_since is not None and now - session.waiting_since > STUCK_AFTER]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    ledger.stop_timing.append(round(time.monotonic() - stop, 1))
    for task in done:
        if task.exception() is not None:
            ledger.stats[f"slot_error_{type(task.exception()).__name__}"] += 1
    return stuck
