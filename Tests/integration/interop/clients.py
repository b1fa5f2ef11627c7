"""The clients of the interop matrix. Each sends messages through the proxy and gives back its own
account: (succeeded, Dialogue, detail), where detail is its output for a failure message.

swaks, curl, msmtp and smtplib run once per message; the MTAs (postfix_instance.PostfixClient,
exim_peer.EximClient, opensmtpd_peer.OpenSMTPDClient) are started for the cell, since their
configuration names the proxy's port.
"""
import io
import contextlib
import re
import smtplib
import ssl
import subprocess

from interop_support import (AUTH_PASSWORD, AUTH_USER, COMMAND_TIMEOUT, RECIPIENT, SENDER, Dialogue,
                             require_command)


def _verb(text):
    words = text.split()
    return words[0].upper() if words else ""


def _run(argv, stdin=None):
    return subprocess.run(argv, input=stdin, capture_output=True, timeout=COMMAND_TIMEOUT)


class Swaks:
    """swaks, plain or with --pipeline or --auth; --tls is the cell's STARTTLS."""

    def __init__(self, name, *flags, auth=False):
        self.name = name
        self.flags = flags
        self.needs_auth = auth

    def send(self, port, tls, messages, tmp_path):
        require_command("swaks", "tools/setup (Debian package swaks)")
        results = []
        for number, octets in enumerate(messages, 1):
            # The content as swaks --no-data-fixup sends it: dot-stuffed, ending in "." (swaks adds CRLF).
            wire = tmp_path / f"swaks-{number}.wire"
            wire.write_bytes(b"\r\n".join(b"." + l if l.startswith(b".") else l for l in octets.split(b"\r\n")) + b".")
            argv = ["swaks", "--server", f"127.0.0.1:{port}", "--helo", "client.swaks.test", "--timeout", "30",
                    "--from", SENDER, "--to", RECIPIENT, "--data", f"@{wire}", "--no-data-fixup", "--suppress-data",
                    *self.flags]
            if tls:
                argv.append("--tls")
            if self.needs_auth:
                argv += ["--auth", "PLAIN", "--auth-user", AUTH_USER, "--auth-password", AUTH_PASSWORD]
            results.append(_run(argv))
        output = "".join(r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace") for r in results)
        commands, replies = [], []
        for line in output.splitlines():
            if line.startswith((" -> ", " ~> ")):
                commands.append(_verb(line[4:]))
            elif line.startswith(("<-  ", "<~  ")) and re.match(r"^\d{3}( |$)", line[4:]):
                replies.append(int(line[4:7]))
            elif line.startswith(("<** ", "<~* ")) and re.match(r"^\d{3}( |$)", line[4:]):
                replies.append(int(line[4:7]))
        succeeded = all(r.returncode == 0 for r in results)
        return succeeded, Dialogue(commands, replies, "TLS started" in output), output[-4000:]


class Curl:
    name = "curl"
    needs_auth = False

    def send(self, port, tls, messages, tmp_path):
        require_command("curl", "tools/setup (Debian package curl)")
        results = []
        for number, octets in enumerate(messages, 1):
            path = tmp_path / f"curl-{number}.eml"
            path.write_bytes(octets)
            argv = ["curl", "-v", "-sS", "--max-time", "60", f"smtp://127.0.0.1:{port}", "--mail-from", SENDER,
                    "--mail-rcpt", RECIPIENT, "-T", str(path)]
            if tls:
                argv += ["--ssl-reqd", "-k"]
            results.append(_run(argv))
        output = "".join(r.stderr.decode(errors="replace") for r in results)
        commands, replies = [], []
        for line in output.splitlines():
            if line.startswith("> "):
                commands.append(_verb(line[2:]))
            elif line.startswith("< ") and re.match(r"^\d{3}( |$)", line[2:]):
                replies.append(int(line[2:5]))
        # curl -v prints nothing of the QUIT it sends on closing the connection: a partial account.
        return (all(r.returncode == 0 for r in results),
                Dialogue(commands, replies, "SSL connection using" in output, partial=True), output[-4000:])


class Msmtp:
    name = "msmtp"
    needs_auth = False

    def send(self, port, tls, messages, tmp_path):
        require_command("msmtp", "tools/setup (Debian package msmtp)")
        results = []
        for octets in messages:
            argv = ["msmtp", "--debug", "--host=127.0.0.1", f"--port={port}", f"--from={SENDER}", "--auth=off",
                    "--domain=client.msmtp.test", "--timeout=30"]
            argv += ["--tls=on", "--tls-starttls=on", "--tls-certcheck=off"] if tls else ["--tls=off"]
            argv.append(RECIPIENT)
            # msmtp reads a local message: LF line ends, which it sends as CRLF, dot-stuffed.
            results.append(_run(argv, stdin=octets.replace(b"\r\n", b"\n")))
        output = "".join(r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace") for r in results)
        commands, replies = [], []
        in_content = False
        for line in output.splitlines():
            if line.startswith("--> "):
                text = line[4:]
                if in_content:
                    in_content = text != "."
                    continue
                commands.append(_verb(text))
                in_content = _verb(text) == "DATA"
            elif line.startswith("<-- ") and re.match(r"^\d{3}( |$)", line[4:]):
                replies.append(int(line[4:7]))
        return (all(r.returncode == 0 for r in results),
                Dialogue(commands, replies, "TLS session parameters" in output or "STARTTLS" in commands),
                output[-4000:])


class Smtplib:
    name = "smtplib"
    needs_auth = False

    def send(self, port, tls, messages, tmp_path):
        debug = io.StringIO()
        succeeded = True
        detail = ""
        for octets in messages:
            try:
                with contextlib.redirect_stderr(debug):
                    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.smtplib.test", timeout=30) as client:
                        client.set_debuglevel(1)
                        client.ehlo()
                        if tls:
                            context = ssl.create_default_context()
                            context.check_hostname = False
                            context.verify_mode = ssl.CERT_NONE
                            client.starttls(context=context)
                            client.ehlo()
                        client.sendmail(SENDER, [RECIPIENT], octets)
            except (smtplib.SMTPException, OSError) as error:
                succeeded = False
                detail += f"{type(error).__name__}: {error}\n"
        output = debug.getvalue()
        commands, replies = [], []
        for line in output.splitlines():
            match = re.search(r"send: b?'([A-Za-z]+)", line)
            if match and not re.search(r"send: b?'From: ", line):
                commands.append(match.group(1).upper())
            match = re.search(r"reply: retcode \((\d{3})\)", line)
            if match:
                replies.append(int(match.group(1)))
        # smtplib logs no greeting: the 220 it read on connecting is put first.
        if replies or commands:
            replies.insert(0, 220)
        # starttls() raises unless the server said 220 and the handshake completed.
        return succeeded, Dialogue(commands, replies, "STARTTLS" in commands and succeeded), detail + output[-4000:]


SMTP_VERBS = {"EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "QUIT",
              "VRFY", "EXPN", "HELP"}
