"""Shared pieces of the hostile-input suite: the smuggling payloads of hostile-input cases 1-4, a raw
client session up to 354, and one view of "what did the upstream store" for each kind of upstream."""
import socket
import time

from proxy_support import RawClient, recorded_contents, sink_dumps

# The proxy's cwd may hold ./rules, which would spool messages; these tests choose their rules.
NO_RULES = ("--rules", "none")

CARRIER = b"Subject: carrier\r\n\r\nCARRIER-BODY"
# P: a second transaction smuggled inside the first message's content.
SMUGGLED = (b"MAIL FROM:<s@evil.test>\r\nRCPT TO:<v@example.org>\r\nDATA\r\n"
            b"Subject: smuggled\r\n\r\nP-SMUGGLED-CONTENT\r\n")
LEGIT = b"Subject: legit\r\n\r\nLEGIT-BODY\r\n"

# (hostile-input case, id, the bytes that end the carrier's content in the client's eyes)
SMUGGLING_CASES = [
    (1, "LF.LF", b"\n.\n"),
    (2, "LF.CRLF", b"\n.\r\n"),
    (2, "CRLF.LF", b"\r\n.\n"),
    (3, "CR.CR", b"\r.\r"),
    (3, "CR.LF", b"\r.\n"),
    (3, "LF.CR", b"\n.\r"),
    (3, "CR.CRLF", b"\r.\r\n"),
    (4, "CRLF.NUL-dot.CRLF", b"\r\n\0.\r\n"),
    (4, "CRLF.dot-NUL.CRLF", b"\r\n.\0\r\n"),
]


def smuggling_payload(terminator):
    """The content the client sends after 354: carrier, fake end, P, and the real end of data."""
    return CARRIER + terminator + SMUGGLED + b".\r\n"


def first_forbidden(data):
    """The anomaly the strict rule must report for the first bad octet of `data`."""
    for index, octet in enumerate(data):
        if octet == 0:
            return "nul_in_data"
        if octet == 0x0D and data[index + 1:index + 2] != b"\n":
            return "bare_cr_in_data"
        if octet == 0x0A and (index == 0 or data[index - 1] != 0x0D):
            return "bare_lf_in_data"
    return None


def open_transaction(client, recipient="b@example.org"):
    """Greeting, EHLO, MAIL, RCPT, DATA; asserts each reply and the 354."""
    assert client.reply()[0] == 220
    assert client.command("EHLO raw.client.test\r\n")[0] == 250
    assert client.command("MAIL FROM:<a@client.test>\r\n")[0] == 250
    code, lines = client.command(f"RCPT TO:<{recipient}>\r\n")
    assert code == 250, lines
    code, lines = client.command("DATA\r\n")
    assert code == 354, lines


def send_legit(client, recipient="b@example.org"):
    """A well-formed message in the same session: the session stayed in sync."""
    assert client.command("MAIL FROM:<a@client.test>\r\n")[0] == 250
    assert client.command(f"RCPT TO:<{recipient}>\r\n")[0] == 250
    assert client.command("DATA\r\n")[0] == 354
    code, lines = client.command(LEGIT + b".\r\n")
    assert code == 250, lines


def no_delay_client(host, port):
    """A RawClient whose writes leave as they are made (TCP_NODELAY)."""
    client = RawClient(host, port)
    client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return client


def send_split(client, data, offset, pause=0.02):
    """`data` in two writes split at `offset`, a pause apart, so they arrive as two segments."""
    if offset > 0:
        client.send(data[:offset])
        time.sleep(pause)
    client.send(data[offset:])


def rss_kib(pid):
    """A process's resident memory in KiB (flat-memory checks)."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def anomaly_kinds(record):
    return [a["kind"] for a in record.get("anomalies") or []]


def upstream_lines(record):
    return [event["text"] for event in record.get("events") or [] if event.get("to") == "server"]


class Stored:
    """What an upstream stored, as a list of message bytes, whatever its kind."""

    def __init__(self, kind, address, read):
        self.kind = kind
        self.address = address
        self._read = read

    def messages(self, wait_for=0):
        return self._read(wait_for)


def start_upstream(kind, upstreams, postfixes):
    """An upstream of the given kind: "aiosmtpd" (recorder), "smtp-sink" (-d dumps) or "postfix"
    (lenient Postfix 3.7, messages held)."""
    if kind == "aiosmtpd":
        host, port, record = upstreams.aiosmtpd()

        def read(wait_for):
            deadline = time.monotonic() + 10
            while True:
                contents = recorded_contents(record)
                if len(contents) >= wait_for or time.monotonic() > deadline:
                    return contents
                time.sleep(0.1)

        return Stored(kind, (host, port), read)
    if kind == "smtp-sink":
        host, port, dump = upstreams.smtp_sink()
        return Stored(kind, (host, port), lambda wait_for: sink_dumps(dump, wait_for=wait_for))
    if kind == "postfix":
        from postfix_peer import LENIENT
        instance = postfixes(main=LENIENT)
        return Stored(kind, ("127.0.0.1", instance.port), lambda wait_for: instance.stored(wait_for))
    raise ValueError(kind)
