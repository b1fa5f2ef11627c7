"""OpenSMTPD for the interop matrix, as an upstream or as a client, unpacked by tools/setup-peers.

OpenSMTPD conflicts with the postfix package, so it is not installed: `smtpd -d -f CONFIG` runs from
the unpacked tree. Its queue (/var/spool/smtpd) and control socket (/run/smtpd.sock) are compiled
in, so each instance runs in a private mount namespace (`unshare --mount`) with folders of its own
bind-mounted over both: instances never share a queue, and nothing is left behind. It also needs
the users opensmtpd and opensmtpq and /var/lib/opensmtpd/empty (tools/setup-peers makes them).

`-T smtp` / `-T mta` trace every command line it reads or sends ("<<< CMD" / ">>> CMD"): its
witness of either leg.

- Upstream: plaintext only. OpenSMTPD 6.8 on Debian 12 fails every TLS handshake as a server, and
  it is the strict server of the matrix: a second EHLO gets `503 5.5.1 Already identified`. It
  relays what it accepts to an aiosmtpd witness (aiosmtpd_peer.py), which stores it with the
  Received: field OpenSMTPD adds on top.
- Client: messages injected into its smtpd are relayed to the proxy (`relay host`), over STARTTLS
  without certificate checks or in plaintext (`smtp+notls://`). It keeps the connection open for
  10 s after the last message before its QUIT; the cell does not wait for that, so the session
  ends when the instance stops.
"""
import re
import shutil
import signal

from interop_support import (DELIVERY_WAIT, PEERS_CACHE, Dialogue, free_port, missing_peer, peer_folder,
                             require_binary, require_command, require_root, wait_for_port, wait_until)

SMTPD = PEERS_CACHE / "usr" / "sbin" / "smtpd"
SETUP = "tools/setup-peers (OpenSMTPD unpacked into /var/cache/smtpscope-peers)"


def _require():
    require_root("OpenSMTPD")
    require_binary(SMTPD, "OpenSMTPD", SETUP)
    require_command("unshare", "tools/setup (util-linux)")
    import pwd
    for user in ("opensmtpd", "opensmtpq"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            missing_peer(f"user {user}", SETUP)
    import pathlib
    for folder in ("/var/lib/opensmtpd/empty", "/var/spool/smtpd"):
        if not pathlib.Path(folder).is_dir():
            missing_peer(folder, SETUP)


class OpenSMTPD:
    def __init__(self, processes, name, config, trace):
        _require()
        self.processes = processes
        self.directory = peer_folder(f"opensmtpd-{name}")
        for sub in ("spool", "run"):
            (self.directory / sub).mkdir()
        (self.directory / "spool").chmod(0o711)
        self.config = self.directory / "smtpd.conf"
        self.config.write_text(config)
        mounts = (f"mount --bind {self.directory}/spool /var/spool/smtpd && "
                  f"mount --bind {self.directory}/run /run && "
                  f"exec {SMTPD} -d -T {trace} -f {self.config}")
        self.process = processes.start(["unshare", "--mount", "--propagation", "private", "sh", "-c", mounts],
                                       f"opensmtpd {name}")

    def trace(self):
        stdout, stderr = self.processes.output(self.process)
        return stdout + stderr

    def stop(self):
        self.processes.stop(self.process, sig=signal.SIGTERM)
        shutil.rmtree(self.directory, ignore_errors=True)


class OpenSMTPDUpstream:
    name = "opensmtpd"
    offers_tls = False
    offers_auth = False
    witnessed = {"EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "QUIT"}

    def __init__(self, processes, store):
        """store: an aiosmtpd witness (aiosmtpd_peer.AiosmtpdUpstream) to relay the accepted mail to."""
        self.store = store
        self.port = free_port()
        config = (f"listen on 127.0.0.1 port {self.port} hostname upstream.opensmtpd.test\n"
                  f'action "store" relay host smtp+notls://127.0.0.1:{store.address[1]}\n'
                  'match from any for any action "store"\n')
        self.instance = OpenSMTPD(processes, "upstream", config, "smtp")
        wait_for_port("127.0.0.1", self.port)
        self.address = ("127.0.0.1", self.port)

    def stop(self):
        self.instance.stop()
        self.store.stop()

    def mark(self):
        return (len(self.instance.trace()), self.store.mark())

    def received(self, mark, count, timeout=None):
        """As OpenSMTPD got them: what it relayed, without the one Received: field it added."""
        _, store_mark = mark
        relayed = self.store.received(store_mark, count, timeout)
        return [_drop_first_field(octets) for octets in relayed]

    def sessions(self, mark, timeout=DELIVERY_WAIT):
        offset, _ = mark

        def complete():
            text = self.instance.trace()[offset:]
            opened = len(re.findall(r" smtp connected ", text))
            closed = len(re.findall(r" smtp disconnected ", text))
            return text if opened and closed >= opened else None

        text = wait_until(complete, timeout) or self.instance.trace()[offset:]
        sessions = []
        for block in re.split(r"\n\S+ smtp connected ", text)[1:]:
            counts = {}
            for line in block.splitlines():
                match = re.match(r"^smtp: 0x[0-9a-f]+: <<< ([A-Za-z]+)", line)
                if match:
                    verb = match.group(1).upper()
                    counts[verb] = counts.get(verb, 0) + 1
            sessions.append(counts)
        return sessions

    def quit_received(self, mark):
        return [s.get("QUIT", 0) > 0 for s in self.sessions(mark)]


def _drop_first_field(octets):
    end = octets.find(b"\r\n")
    while end >= 0 and octets[end + 2:end + 3] in (b" ", b"\t"):
        end = octets.find(b"\r\n", end + 2)
    return octets[end + 2:] if octets[:9].lower() == b"received:" else octets


class OpenSMTPDClient:
    name = "opensmtpd"

    def __init__(self, processes, proxy_port, tls):
        self.inject_port = free_port()
        relay = (f"relay host smtp://127.0.0.1:{proxy_port} tls no-verify" if tls
                 else f"relay host smtp+notls://127.0.0.1:{proxy_port}")
        config = (f"listen on 127.0.0.1 port {self.inject_port} hostname client.opensmtpd.test\n"
                  f'action "proxy" {relay}\n'
                  'match from any for any action "proxy"\n')
        self.instance = OpenSMTPD(processes, "client", config, "mta")
        wait_for_port("127.0.0.1", self.inject_port)
        self.proxy_port = proxy_port

    def stop(self):
        self.instance.stop()

    def send(self, messages):
        import smtplib
        with smtplib.SMTP("127.0.0.1", self.inject_port, local_hostname="localhost", timeout=30) as injector:
            for octets in messages:
                injector.sendmail("alice@client.test", ["bob@example.org"], octets)

        def settled():
            lines = re.findall(r"mta delivery .*", self.instance.trace())
            # A temporary failure is retried later, not within the cell: the first one settles it.
            failed = any('result="Ok"' not in line for line in lines)
            return lines if len(lines) >= len(messages) or failed else None

        deliveries = wait_until(settled) or re.findall(r"mta delivery .*", self.instance.trace())
        succeeded = len(deliveries) == len(messages) and all('result="Ok"' in l for l in deliveries)
        return succeeded, self.dialogue(), "\n".join(deliveries) or self.instance.trace()[-3000:]

    def dialogue(self):
        commands, replies = [], []
        for line in self.instance.trace().splitlines():
            match = re.match(r"^mta: 0x[0-9a-f]+: (>>>|<<<) (.*)$", line)
            if not match:
                continue
            direction, text = match.groups()
            if direction == ">>>":
                commands.append(text.split()[0].upper() if text.split() else "")
            elif re.match(r"^\d{3}( |$)", text):
                replies.append(int(text[:3]))
        tls = "STARTTLS" in commands
        return Dialogue(commands, replies, tls)
