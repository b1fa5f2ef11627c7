"""What every cell of the interop matrix shares: the message, peer folders, the oracles.

A cell relays one message (or a queue run of several) from a real client through `smtpscope proxy`
to a real upstream, and then checks four things against witnesses that are not the proxy:
  1. the client saw success (its own output or log);
  2. the upstream stored the message exactly once, byte-identical: after the trace header fields
     MTAs prepend (Received:), the stored octets are the test's message; and the octets the upstream
     got over the wire hash to the record's `message.sha256`;
  3. the record's client leg matches the client's own account of the dialogue (the verbs it sent,
     the reply codes it read), and its upstream leg matches the upstream's own account (the verbs it
     received, counted; QUIT is checked by test_quit_reaches_the_upstream);
  4. both legs' TLS: the client leg's `tls` block, and the upstream leg's `[TLS established]` event,
     against whether each peer really used TLS.
"""
import collections
import hashlib
import importlib.util
import os
import pathlib
import re
import shutil
import tempfile
import time

import pytest

_parent_spec = importlib.util.spec_from_file_location(
    "smtpscope_integration_conftest_interop", pathlib.Path(__file__).resolve().parents[1] / "conftest.py")
integration = importlib.util.module_from_spec(_parent_spec)
_parent_spec.loader.exec_module(integration)

free_port = integration.free_port
wait_for_port = integration.wait_for_port
PYTHON = integration.PYTHON
COMMAND_TIMEOUT = integration.COMMAND_TIMEOUT
HERE = pathlib.Path(__file__).resolve().parent
PEERS_CACHE = pathlib.Path(os.environ.get("SMTPSCOPE_PEERS", "/var/cache/smtpscope-peers")) / "root"
# Delivery by a queue manager is asynchronous: how long a witness waits for what it expects.
DELIVERY_WAIT = 30

SENDER = "alice@client.test"
RECIPIENT = "bob@example.org"
# The one AUTH account of the upstreams that offer AUTH (aiosmtpd, Exim); never in a record.
AUTH_USER, AUTH_PASSWORD = "alice", "Interop-Secret-42"


def message(number=1):
    """A message with every header field an MTA would otherwise add (so none does), dot-leading lines
    (dot-stuffing on every leg) and a long line."""
    return (f"From: Alice <{SENDER}>\r\nTo: <{RECIPIENT}>\r\nSubject: interop {number}\r\n"
            f"Date: Mon, 7 Dec 2026 06:00:00 +0000\r\nMessage-ID: <interop-{number}@client.test>\r\n"
            f"\r\nfirst line of message {number}\r\n.leading dot\r\n..two dots\r\n.\r\n x\r\n"
            + "y" * 900 + "\r\nlast line\r\n").encode()


def missing_peer(what, step):
    """A peer or tool the cell needs is missing: under CI=true that fails (a pristine machine must
    have it), elsewhere it skips, naming the install step either way."""
    text = f"{what} is missing: run {step}"
    if os.environ.get("CI") == "true":
        pytest.fail(text)
    pytest.skip(text)


def require_root(what):
    if os.geteuid() != 0:
        missing_peer(f"root (for {what})", "the tests as root")


def require_binary(path, what, step):
    path = pathlib.Path(path)
    if not (path.is_file() and os.access(path, os.X_OK)):
        missing_peer(f"{what} ({path})", step)
    return path


def require_command(name, step):
    found = shutil.which(name)
    if found is None:
        missing_peer(name, step)
    return found


def peer_folder(prefix):
    """A folder under /tmp that peers which drop privileges can enter (pytest's tmp_path is 0700)."""
    directory = pathlib.Path(tempfile.mkdtemp(prefix=f"smtpscope-interop-{prefix}-", dir="/tmp"))
    directory.chmod(0o755)
    return directory


def wait_until(predicate, timeout=None, interval=0.1):
    """predicate()'s first true value, or its last value after timeout seconds (DELIVERY_WAIT)."""
    deadline = time.monotonic() + (DELIVERY_WAIT if timeout is None else timeout)
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def crlf(octets):
    """Stored as LF lines (Postfix pipe, Exim appendfile): the CRLF form that went over the wire."""
    return octets.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def strip_trace(octets):
    """The message without the Received: fields MTAs prepend on the way."""
    while octets[:9].lower() == b"received:":
        end = octets.find(b"\r\n")
        while end >= 0 and octets[end + 2:end + 3] in (b" ", b"\t"):
            end = octets.find(b"\r\n", end + 2)
        if end < 0:
            return octets
        octets = octets[end + 2:]
    return octets


def sha256(octets):
    return hashlib.sha256(octets).hexdigest()


# --------------------------------------------------------------------------------------------------
# The record's view of both legs

VERB = re.compile(r"^([A-Za-z]+)")


def verb_of(line):
    match = VERB.match(line)
    return match.group(1).upper() if match else None


def record_events(record, sender, receiver):
    return [e for e in record.get("events") or [] if e.get("from") == sender and e.get("to") == receiver]


def record_commands(record, sender, receiver):
    """The verbs of the command lines in the record going sender -> receiver (no notes, no content)."""
    verbs = []
    for event in record_events(record, sender, receiver):
        text = event["text"]
        # Not commands: content ("octets"), notes and redacted SASL lines ("[...]").
        if "octets" in event or text.startswith("["):
            continue
        verb = verb_of(text)
        if verb is not None:
            verbs.append(verb)
    return verbs


def record_reply_codes(record, sender, receiver):
    """The codes of the complete replies going sender -> receiver (one per reply, not per line)."""
    codes = []
    for event in record_events(record, sender, receiver):
        text = event["text"]
        if re.match(r"^\d{3}( |$)", text):
            codes.append(int(text[:3]))
    return codes


def upstream_tls_established(record):
    return any(e["text"] == "[TLS established]" for e in record_events(record, "proxy", "server"))


def delivered_transactions(record):
    return [t for t in record.get("transactions") or [] if t.get("outcome") == "delivered"]


class Dialogue:
    """One side's own account of an SMTP dialogue: the verbs it sent and the reply codes it read, in
    order, and whether it used TLS. A partial account covers the start of the dialogue only."""

    def __init__(self, commands, replies, tls, partial=False):
        self.commands = commands
        self.replies = replies
        self.tls = tls
        self.partial = partial

    def __repr__(self):
        return (f"Dialogue(commands={self.commands}, replies={self.replies}, tls={self.tls}"
                f"{', partial' if self.partial else ''})")


def counted(verbs, only=None):
    return collections.Counter(v for v in verbs if only is None or v in only)


def read_records(directory):
    """Every record the proxy wrote into its transcripts folder (not its index.sqlite)."""
    records = []
    for path in sorted(pathlib.Path(directory).rglob("*.jsonl")):
        if path.is_file():
            records += integration.parse_jsonl(path.read_text(errors="replace"))
    return records
