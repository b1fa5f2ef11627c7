"""aiosmtpd as an upstream (or as OpenSMTPD's store): runs aiosmtpd_peer.py and reads its record."""
import base64
import json
import shutil

from interop_support import AUTH_PASSWORD, AUTH_USER, HERE, PYTHON, free_port, peer_folder, wait_until


class AiosmtpdUpstream:
    name = "aiosmtpd"
    offers_auth = True
    witnessed = {"EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT"}

    def __init__(self, processes, tls_cert=None):
        self.offers_tls = tls_cert is not None
        self.directory = peer_folder("aiosmtpd")
        self.record = self.directory / "record.jsonl"
        self.record.touch()
        port = free_port()
        argv = [PYTHON, str(HERE / "aiosmtpd_peer.py"), "--port", str(port), "--record", str(self.record),
                "--auth-user", AUTH_USER, "--auth-password", AUTH_PASSWORD]
        if tls_cert is not None:
            argv += ["--tls-cert", str(tls_cert[0]), "--tls-key", str(tls_cert[1])]
        self.process = processes.start(argv, "aiosmtpd upstream", ready_line="READY")
        self.processes = processes
        self.address = ("127.0.0.1", port)

    def stop(self):
        self.processes.stop(self.process)
        shutil.rmtree(self.directory, ignore_errors=True)

    def lines(self):
        # A last line without its newline is an entry still being written: not read yet.
        text = self.record.read_text()
        return text[:text.rfind("\n") + 1].splitlines()

    def entries(self, mark=0):
        return [json.loads(line) for line in self.lines()[mark:] if line.strip()]

    def mark(self):
        return len(self.lines())

    def received(self, mark, count, timeout=None):
        def messages():
            found = [base64.b64decode(e["message"]) for e in self.entries(mark) if "message" in e]
            return found if len(found) >= count else None

        return wait_until(messages, timeout) or [base64.b64decode(e["message"]) for e in self.entries(mark)
                                                 if "message" in e]

    def sessions(self, mark, timeout=2):
        """The commands of each session since mark. aiosmtpd writes a command down when it reads it,
        and a session's end is not written: the caller asks after the proxy has ended the session."""
        sessions = {}
        for entry in self.entries(mark):
            if "command" in entry:
                counts = sessions.setdefault(entry["session"], {})
                counts[entry["command"]] = counts.get(entry["command"], 0) + 1
        return list(sessions.values())

    def quit_received(self, mark):
        return [s.get("QUIT", 0) > 0 for s in self.sessions(mark)]
