"""Helpers for the proxy's end-to-end tests: the proxy process, upstreams, a raw client, record checks.

conftest.py turns these into fixtures; test files import the plain helpers from here.
"""
import base64
import importlib.util
import json
import os
import pathlib
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest

_parent_spec = importlib.util.spec_from_file_location(
    "smtpscope_integration_conftest", pathlib.Path(__file__).resolve().parents[1] / "conftest.py")
integration = importlib.util.module_from_spec(_parent_spec)
_parent_spec.loader.exec_module(integration)

free_port = integration.free_port
wait_for_port = integration.wait_for_port
swaks = integration.swaks
PYTHON = integration.PYTHON
COMMAND_TIMEOUT = integration.COMMAND_TIMEOUT
HERE = pathlib.Path(__file__).resolve().parent
RECORD_WAIT = 15


# --------------------------------------------------------------------------------------------------
# The proxy under test


def listening(port):
    """True when a TCP socket listens on the port (IPv4 or IPv6), read from /proc without connecting."""
    wanted = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = pathlib.Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[1].endswith(wanted) and fields[3] == "0A":
                return True
    return False


def port_in_use(port, host="127.0.0.1"):
    """True when a server could not bind the port: something listens on it. SO_REUSEADDR, as servers
    set it, so that TIME_WAIT connections left by an earlier run do not count."""
    if listening(port):
        return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


class ProxyRun:
    def __init__(self, processes, process, port, transcripts):
        self.processes = processes
        self.process = process
        self.host = "127.0.0.1"
        self.port = port
        self.transcripts = transcripts
        self.stopped = False

    def output(self):
        stdout, stderr = self.processes.output(self.process)
        return stdout + stderr

    def stop(self):
        if not self.stopped:
            self.processes.stop(self.process, sig=signal.SIGTERM, timeout=15)
            self.stopped = True
        return self.process.returncode

    def records(self, expected=1):
        """The transcript records; waits up to RECORD_WAIT s for `expected`, then stops the proxy
        (SIGTERM drains and flushes) and reads again."""
        deadline = time.monotonic() + RECORD_WAIT
        records = read_records(self.transcripts)
        while len(records) < expected and time.monotonic() < deadline and self.process.poll() is None:
            time.sleep(0.1)
            records = read_records(self.transcripts)
        if len(records) < expected:
            self.stop()
            records = read_records(self.transcripts)
        return records


def complete_lines(path):
    """The file's whole lines. A record is handed to one write(2), but a reader can still see the
    first pages of that write before the rest (a regular file's write is not atomic to readers), so
    a last line without its newline is a record still being written, not a broken one."""
    text = path.read_text(errors="replace")
    lines = text.split("\n")
    return lines[:-1]


def read_records(directory):
    records = []
    directory = pathlib.Path(directory)
    if not directory.exists():
        return records
    # The record files only: the message trace's index.sqlite lives in the same directory.
    paths = [directory] if directory.is_file() else sorted(directory.rglob("*.jsonl"))
    for path in paths:
        if not path.is_file():
            continue
        for number, line in enumerate(complete_lines(path), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise AssertionError(f"{path}:{number} is not JSON ({error}): {line[:200]!r}")
    return records


# --------------------------------------------------------------------------------------------------
# Upstreams


class Upstreams:
    def __init__(self, processes, tmp_path):
        self.processes = processes
        self.tmp_path = tmp_path

    def aiosmtpd(self, *flags, kind="aiosmtpd"):
        """upstream_peer.py; returns (host, port, record_path)."""
        port = free_port()
        record = self.tmp_path / f"upstream-{port}.jsonl"
        argv = [PYTHON, str(HERE / "upstream_peer.py"), "--kind", kind, "--port", str(port),
                "--record", str(record), *map(str, flags)]
        self.processes.start(argv, f"upstream {kind}", ready_line="READY")
        return "127.0.0.1", port, record

    def smtp_sink(self, *flags, dump=True):
        """Postfix's smtp-sink, dumping each message into a directory of its own; returns (host, port, dir)."""
        if shutil.which("smtp-sink") is None:
            pytest.skip("smtp-sink not installed (Postfix); run tools/setup")
        port = free_port()
        directory = self.tmp_path / f"sink-dump-{port}"
        directory.mkdir()
        # smtp-sink drops to the postfix user, which cannot enter pytest's private tmp_path.
        os.chmod(directory, 0o777)
        for parent in directory.parents:
            if parent == pathlib.Path("/tmp"):
                break
            os.chmod(parent, os.stat(parent).st_mode | 0o711)
        argv = ["smtp-sink", "-u", "postfix", *map(str, flags)]
        if dump:
            argv += ["-d", f"{directory}/%M."]
        argv += [f"127.0.0.1:{port}", "256"]
        self.processes.start(argv, "smtp-sink")
        wait_for_port("127.0.0.1", port)
        return "127.0.0.1", port, directory


def recorded(record_path):
    path = pathlib.Path(record_path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def recorded_contents(record_path):
    return [base64.b64decode(entry["content"]) for entry in recorded(record_path) if "content" in entry]


def sink_dumps(directory, wait_for=0, timeout=10):
    """smtp-sink dump bodies: the message as received (unstuffed, LF line ends, one extra empty line),
    without smtp-sink's own X-* and Received headers."""
    deadline = time.monotonic() + timeout
    while True:
        files = sorted(p for p in pathlib.Path(directory).iterdir() if p.is_file())
        if len(files) >= wait_for or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    bodies = []
    for path in files:
        lines = path.read_bytes().split(b"\n")
        index = 0
        while index < len(lines) and lines[index].startswith(b"X-"):
            index += 1
        assert lines[index].startswith(b"Received: "), f"unexpected dump format in {path}"
        index += 1
        while index < len(lines) and lines[index].startswith(b"\t"):
            index += 1
        bodies.append(b"\n".join(lines[index:]))
    return bodies



def as_sink_dump(message):
    """What smtp-sink's dump holds for a message that ends in CRLF."""
    return message.replace(b"\r\n", b"\n") + b"\n"


# --------------------------------------------------------------------------------------------------
# Raw SMTP client


class RawClient:
    """A socket client that reads whole replies (multi-line aware)."""

    def __init__(self, host, port, timeout=20):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buffer = b""

    def reply(self):
        """The next complete reply as (code, [lines]); (None, []) when the server closed."""
        lines = []
        while True:
            while b"\r\n" not in self.buffer:
                try:
                    chunk = self.sock.recv(65536)
                except (ConnectionResetError, socket.timeout):
                    chunk = b""
                if not chunk:
                    return (int(lines[-1][:3]) if lines else None), [l.decode(errors="replace") for l in lines]
                self.buffer += chunk
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3]), [l.decode(errors="replace") for l in lines]

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def command(self, data):
        self.send(data)
        return self.reply()

    def close(self):
        self.sock.close()


# --------------------------------------------------------------------------------------------------
# Record checks


def check_records(records, validate_record, count=None, secrets=()):
    """Every record matches the schema, the count is right, and no secret appears anywhere."""
    if count is not None:
        assert len(records) == count, f"expected {count} transcript records, got {len(records)}"
    for record in records:
        validate_record(record)
        assert record.get("schema") == "smtpscope.session/1"
        assert record.get("source") == "proxy"
    text = json.dumps(records)
    for secret in secrets:
        assert secret not in text, "an AUTH secret appears in a transcript"


def delivered(record):
    return [t for t in record.get("transactions") or [] if t.get("outcome") == "delivered"]


def secret_forms(user, password):
    """The password and the base64 forms a transcript or log could leak."""
    forms = [password, base64.b64encode(password.encode()).decode(),
             base64.b64encode(f"\0{user}\0{password}".encode()).decode(),
             base64.b64encode(f"{user}\0{user}\0{password}".encode()).decode()]
    return forms


def unverified_tls_context():
    """A client TLS context that takes the proxy's self-signed (`--tls-cert auto`) certificate."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
