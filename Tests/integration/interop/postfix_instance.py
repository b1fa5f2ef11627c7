"""A throwaway Postfix instance for the interop matrix, as an upstream or as a client.

It runs `master -d -c DIR` in the foreground, with main.cf, master.cf and a queue of its own under
/tmp. Run that way Postfix reads only DIR, so it needs neither the system's /etc/postfix/main.cf
(a fresh machine has none) nor `alternate_config_directories` there; the queue folders that
`postfix start` would create are made here.

- Upstream: smtpd on a free loopback port, STARTTLS with the test certificate, CHUNKING (Postfix's
  default). Every message goes to a `pipe` transport that stores it as a file; a header_checks
  IGNORE removes the Received: field this instance adds, so a stored file is the message as it came
  over the wire (LF line ends). Its log's `disconnect from` lines count each session's commands.
- Client: smtpd on a loopback port to inject into, and relayhost = the proxy. `debug_peer_list`
  logs its SMTP client's whole dialogue ("> CMD", "< REPLY"), its witness of the client leg.
"""
import os
import pathlib
import pwd
import re
import shutil
import signal

from interop_support import (DELIVERY_WAIT, Dialogue, crlf, free_port, peer_folder, require_binary,
                             require_root, wait_for_port, wait_until)

MASTER = pathlib.Path("/usr/lib/postfix/sbin/master")
SETUP = "tools/setup (Debian package postfix)"

QUEUE_FOLDERS = {  # name: (mode, group)
    "active": (0o700, None), "bounce": (0o700, None), "corrupt": (0o700, None), "defer": (0o700, None),
    "deferred": (0o700, None), "flush": (0o700, None), "hold": (0o700, None), "incoming": (0o700, None),
    "private": (0o700, None), "saved": (0o700, None), "trace": (0o700, None),
    "maildrop": (0o730, "postdrop"), "public": (0o710, "postdrop"),
}

SERVICES = [
    "pickup unix n - n 60 1 pickup",
    "cleanup unix n - n - 0 cleanup",
    "qmgr unix n - n 300 1 qmgr",
    "rewrite unix - - n - - trivial-rewrite",
    "bounce unix - - n - 0 bounce",
    "defer unix - - n - 0 bounce",
    "trace unix - - n - 0 bounce",
    "verify unix - - n - 1 verify",
    "flush unix n - n 1000? 0 flush",
    "proxymap unix - - n - - proxymap",
    "showq unix n - n - - showq",
    "error unix - - n - - error",
    "retry unix - - n - - error",
    "discard unix - - n - - discard",
    "anvil unix - - n - 1 anvil",
    "scache unix - - n - 1 scache",
    "postlog unix-dgram n - n - 1 postlogd",
    "smtp unix - - n - - smtp",
    "tlsmgr unix - - n 1000? 1 tlsmgr",
]

DISCONNECT = re.compile(r"postfix/smtpd\[(\d+)\]: disconnect from \S+ (.*)$", re.M)
CONNECT = re.compile(r"postfix/smtpd\[(\d+)\]: connect from ")


def _require():
    require_root("a throwaway Postfix instance")
    require_binary(MASTER, "Postfix", SETUP)
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        from interop_support import missing_peer
        missing_peer("user postfix", SETUP)


class PostfixInstance:
    def __init__(self, processes, name, main, extra_services=()):
        _require()
        self.processes = processes
        self.directory = peer_folder(f"postfix-{name}")
        self.log = self.directory / "maillog"
        postfix = pwd.getpwnam("postfix")
        queue = self.directory / "queue"
        queue.mkdir()
        (queue / "pid").mkdir()
        for folder, (mode, group) in QUEUE_FOLDERS.items():
            path = queue / folder
            path.mkdir()
            gid = postfix.pw_gid if group is None else _group(group)
            os.chown(path, postfix.pw_uid, gid)
            path.chmod(mode)
        data = self.directory / "data"
        data.mkdir()
        os.chown(data, postfix.pw_uid, postfix.pw_gid)
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": str(queue),
            "data_directory": str(data),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject",
            "mydestination": "",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "smtputf8_enable": "no",
            "smtpd_client_port_logging": "yes",
            "maillog_file": str(self.log),
            "maillog_file_prefixes": "/tmp",
            "smtp_dns_support_level": "disabled",
            "disable_dns_lookups": "yes",
        }
        settings.update(main)
        (self.directory / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
        self.smtpd_port = free_port()
        services = [f"127.0.0.1:{self.smtpd_port} inet n - n - - smtpd", *SERVICES, *extra_services]
        (self.directory / "master.cf").write_text("\n".join(services) + "\n")

    def start(self):
        self.process = self.processes.start([str(MASTER), "-d", "-c", str(self.directory)], "postfix master")
        wait_for_port("127.0.0.1", self.smtpd_port)
        return self

    def stop(self):
        self.processes.stop(self.process, sig=signal.SIGTERM)
        shutil.rmtree(self.directory, ignore_errors=True)

    def log_text(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_since(self, mark):
        return self.log_text()[mark:]

    def mark(self):
        return len(self.log_text())


def _group(name):
    import grp
    return grp.getgrnam(name).gr_gid


class PostfixUpstream:
    """Postfix smtpd as the proxy's upstream."""

    name = "postfix"
    offers_tls = True
    offers_auth = False
    # Postfix counts every command per session in its disconnect line.
    witnessed = {"EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "QUIT"}

    def __init__(self, processes, tls_cert):
        self.store = None
        instance = PostfixInstance(processes, "upstream", {}, ())
        store = instance.directory / "store"
        store.mkdir()
        store.chmod(0o777)
        script = instance.directory / "store.sh"
        # Written under a hidden name and renamed: a reader never sees half a message.
        script.write_text(f'#!/bin/sh\ncat > "{store}/.$1.tmp" && exec mv "{store}/.$1.tmp" "{store}/$1.eml"\n')
        script.chmod(0o755)
        (instance.directory / "header_checks").write_text("/^Received: .*by upstream\\.postfix\\.test/ IGNORE\n")
        main = {
            "myhostname": "upstream.postfix.test",
            "default_transport": "store", "relay_transport": "store", "local_transport": "store",
            "header_checks": f"regexp:{instance.directory}/header_checks",
            "smtpd_tls_cert_file": str(tls_cert[0]), "smtpd_tls_key_file": str(tls_cert[1]),
            "smtpd_tls_security_level": "may",
        }
        with (instance.directory / "main.cf").open("a") as settings:
            settings.write("".join(f"{k} = {v}\n" for k, v in main.items()))
        with (instance.directory / "master.cf").open("a") as services:
            services.write(f"store unix - n n - - pipe flags= user=nobody argv={script} ${{queue_id}}\n")
        self.instance = instance.start()
        self.store = store
        self.address = ("127.0.0.1", instance.smtpd_port)

    def stop(self):
        self.instance.stop()

    def mark(self):
        return (self.instance.mark(), {p.name for p in self.store.iterdir()})

    def received(self, mark, count, timeout=None):
        """The messages stored since mark, as they came over the wire (CRLF), oldest first."""
        _, before = mark

        def new():
            files = [p for p in self.store.glob("*.eml") if p.name not in before]
            return files if len(files) >= count else None

        files = wait_until(new, timeout) or [p for p in self.store.glob("*.eml") if p.name not in before]
        files.sort(key=lambda p: p.stat().st_mtime)
        return [crlf(p.read_bytes()) for p in files]

    def sessions(self, mark, timeout=DELIVERY_WAIT):
        """Each smtpd session since mark as a Counter of the commands Postfix says it received."""
        offset, _ = mark

        def complete():
            text = self.instance.log_since(offset)
            connects = len(CONNECT.findall(text))
            disconnects = DISCONNECT.findall(text)
            return disconnects if connects and len(disconnects) >= connects else None

        found = wait_until(complete, timeout) or DISCONNECT.findall(self.instance.log_since(offset))
        sessions = []
        for _, counts in found:
            commands = {}
            for item in counts.split():
                key, _, value = item.partition("=")
                if key == "commands":
                    continue
                # "rcpt=1/2": 1 of 2 succeeded; the witness counts what was received.
                commands[key.upper()] = int(value.split("/")[-1])
            sessions.append(commands)
        return sessions

    def quit_received(self, mark):
        return [s.get("QUIT", 0) > 0 for s in self.sessions(mark)]


class PostfixClient:
    """Postfix as a client: inject into its smtpd, it relays to the proxy (relayhost)."""

    name = "postfix"

    def __init__(self, processes, proxy_port, tls):
        main = {
            "myhostname": "client.postfix.test",
            "relayhost": f"[127.0.0.1]:{proxy_port}",
            "default_transport": "smtp", "relay_transport": "smtp",
            # "encrypt": STARTTLS is required, so a cell with TLS cannot pass over plaintext.
            "smtp_tls_security_level": "encrypt" if tls else "none",
            "smtp_tls_loglevel": "1",
            "debug_peer_list": "127.0.0.1",
            "debug_peer_level": "2",
            # One queue run, no retries within a test: a failure shows at once.
            "smtp_connect_timeout": "10s",
            # QUIT after each delivery instead of keeping the connection for the next message.
            "smtp_connection_cache_on_demand": "no",
            # Read the reply to QUIT (Postfix skips it by default), so its account is the whole dialogue.
            "smtp_skip_quit_response": "no",
        }
        self.proxy_port = proxy_port
        self.tls = tls
        self.instance = PostfixInstance(processes, "client", main).start()
        self.inject_port = self.instance.smtpd_port

    def stop(self):
        self.instance.stop()

    def send(self, messages):
        """Injects the messages and waits until the client has tried each; returns the client's
        account: (succeeded, Dialogue of its SMTP client towards the proxy, detail)."""
        import smtplib
        with smtplib.SMTP("127.0.0.1", self.inject_port, local_hostname="localhost", timeout=30) as injector:
            for octets in messages:
                injector.sendmail("alice@client.test", ["bob@example.org"], octets)
        relay = f"relay=127.0.0.1[127.0.0.1]:{self.proxy_port}"

        def settled():
            lines = [l for l in self.instance.log_text().splitlines() if "postfix/smtp[" in l and " status=" in l]
            return lines if len(lines) >= len(messages) else None

        statuses = wait_until(settled) or []
        # The client logs a delivery before its QUIT: its account ends with the 221 (or a timeout).
        wait_until(lambda: re.search(r"postfix/smtp\[\d+\]: < \S+: 221 ", self.instance.log_text()), timeout=5)
        succeeded = len(statuses) == len(messages) and all("status=sent" in l and relay in l for l in statuses)
        return succeeded, self.dialogue(), "\n".join(statuses) or self.instance.log_text()[-3000:]

    def dialogue(self):
        commands, replies = [], []
        tls = False
        for line in self.instance.log_text().splitlines():
            match = re.search(r"postfix/smtp\[\d+\]: ([<>]) \S+: (.*)$", line)
            if match:
                direction, text = match.groups()
                if direction == ">":
                    commands.append(text.split()[0].upper() if text.split() else "")
                elif re.match(r"^\d{3} ", text):
                    replies.append(int(text[:3]))
            if "postfix/smtp[" in line and "TLS connection established" in line:
                tls = True
        return Dialogue(commands, replies, tls)
