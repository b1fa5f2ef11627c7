"""Shared fixtures for smtpscope's integration tests (run with /usr/bin/python3 -m pytest).

Everything a test starts (SMTP peers, tcpdump) is registered with a `Processes` fixture and stopped in
teardown, even when the test fails. Peers listen on free loopback ports only (127.0.0.1 or ::1).

The binary under test comes from $SMTPSCOPE_BIN (tools/test sets it to the debug build); without it,
<repo>/.build/debug/smtpscope is used when present. Tests that need it skip, with that reason, when no
binary exists; when SMTPSCOPE_BIN names a missing file they fail.

Under CI=true nothing skips: a test whose peer or tool is missing fails, with the install step it lacks
(`pytest_runtest_makereport` below). A hand-set-up machine hides a missing step in tools/setup; a skip in
CI would hide it too. Known differences from reference tools are strict expected failures
(`known_difference`), so a change on either side shows.
"""
import base64
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS = REPO_ROOT / "Tests" / "SMTPCaptureTests" / "Fixtures" / "corpus"
SCHEMA_PATH = REPO_ROOT / "Sources" / "SMTPTranscript" / "session.v1.schema.json"
PEERS = pathlib.Path(__file__).resolve().parent / "peers"
PYTHON = "/usr/bin/python3"

IN_CI = os.environ.get("CI", "").lower() == "true"

# Every subprocess the tests run is bounded, so a hang fails one test instead of eating CI's time.
COMMAND_TIMEOUT = 120
PEER_START_TIMEOUT = 20


# --------------------------------------------------------------------------------------------------
# Skips and known differences


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true a skip is a failure: every peer and tool the suite uses is installed by tools/setup,
    so a skip there means an install step is missing (or a port the suite needs is taken)."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where nothing may skip: {reason}"


def known_difference(request, reason):
    """Marks the running test as a known, explained difference from a reference tool. The comparison
    after this call still runs and is expected to fail (strict): when either tool changes so that it
    passes, the test fails as XPASS and the difference is looked at again."""
    request.node.add_marker(pytest.mark.xfail(reason=reason, strict=True))


# --------------------------------------------------------------------------------------------------
# The binary under test


def find_binary():
    configured = os.environ.get("SMTPSCOPE_BIN")
    if configured:
        return pathlib.Path(configured), True
    return REPO_ROOT / ".build" / "debug" / "smtpscope", False


@pytest.fixture(scope="session")
def smtpscope():
    path, configured = find_binary()
    if not path.is_file():
        if configured:
            pytest.fail(f"SMTPSCOPE_BIN={path} does not exist")
        pytest.skip(f"smtpscope binary not built ({path}); run tools/test or set SMTPSCOPE_BIN")
    return Smtpscope(path)


class Result:
    def __init__(self, completed):
        self.returncode = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr

    @property
    def records(self):
        return parse_jsonl(self.stdout)


class Smtpscope:
    def __init__(self, path):
        self.path = path

    def run(self, *args, stdin=None, timeout=COMMAND_TIMEOUT):
        completed = subprocess.run(
            [str(self.path), *map(str, args)],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "NO_COLOR": "1"},
        )
        return Result(completed)

    def pcap(self, *args, check=True):
        """`smtpscope pcap ARGS...`; with check, insists on exit 0 and returns the result."""
        result = self.run("pcap", *args)
        if check:
            assert result.returncode == 0, f"smtpscope pcap {args} exited {result.returncode}: {result.stderr}"
        return result

    def records(self, capture, *args):
        return self.pcap(capture, *args).records


def parse_jsonl(text):
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise AssertionError(f"line {number} of the output is not JSON ({error}): {line[:200]!r}")
    return records


# --------------------------------------------------------------------------------------------------
# Schema validation


def load_schema():
    """The normative schema, or None while it is still a placeholder (no properties at all)."""
    if not SCHEMA_PATH.is_file():
        return None
    try:
        schema = json.loads(SCHEMA_PATH.read_text())
    except json.JSONDecodeError as error:
        raise AssertionError(f"{SCHEMA_PATH} is not JSON: {error}")
    if not isinstance(schema, dict) or not schema.get("properties"):
        return None
    return schema


@pytest.fixture(scope="session")
def validate_record():
    """Validates one record against session.v1.schema.json (a no-op while the schema is trivial)."""
    schema = load_schema()
    if schema is None:
        return lambda record: None
    import jsonschema

    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    validator_class.check_schema(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)

    def validate(record):
        errors = sorted(validator.iter_errors(record), key=lambda e: list(e.absolute_path))
        if errors:
            details = "\n".join(f"  at /{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in errors[:10])
            raise AssertionError(f"record {record.get('session_id')} does not match the schema:\n{details}")

    return validate


# --------------------------------------------------------------------------------------------------
# Processes: peers and captures, always stopped in teardown


class Processes:
    def __init__(self):
        self.entries = []

    def start(self, argv, name, ready_line=None, ready_stream="stdout", **kwargs):
        """Starts argv; when ready_line is given, waits until that text appears on the stream."""
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            **kwargs,
        )
        entry = {"process": process, "name": name, "stdout": [], "stderr": [], "ready": threading.Event()}
        self.entries.append(entry)
        for stream_name in ("stdout", "stderr"):
            threading.Thread(
                target=self._pump,
                args=(entry, stream_name, ready_line if stream_name == ready_stream else None),
                daemon=True,
            ).start()
        if ready_line is not None:
            deadline = time.monotonic() + PEER_START_TIMEOUT
            while not entry["ready"].wait(0.05):
                if process.poll() is not None or time.monotonic() > deadline:
                    self.stop(process)
                    raise AssertionError(
                        f"{name} did not become ready (exit {process.returncode}):\n"
                        f"{''.join(entry['stdout'])}{''.join(entry['stderr'])}"
                    )
        return process

    @staticmethod
    def _pump(entry, stream_name, ready_line):
        stream = getattr(entry["process"], stream_name)
        for line in stream:
            entry[stream_name].append(line)
            if ready_line is not None and ready_line in line:
                entry["ready"].set()

    def output(self, process):
        for entry in self.entries:
            if entry["process"] is process:
                return "".join(entry["stdout"]), "".join(entry["stderr"])
        return "", ""

    def stop(self, process, sig=signal.SIGTERM, timeout=10):
        if process.poll() is None:
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                pass
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        return process.returncode

    def stop_all(self):
        for entry in reversed(self.entries):
            try:
                self.stop(entry["process"])
            except Exception:
                pass


@pytest.fixture
def processes():
    registry = Processes()
    yield registry
    registry.stop_all()


# --------------------------------------------------------------------------------------------------
# Ports, peers, captures


def free_port(host="127.0.0.1"):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def wait_for_port(host, port, timeout=PEER_START_TIMEOUT):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.5)
            if probe.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on [{host}]:{port}")


class Peers:
    """Starts SMTP peers on free loopback ports; each returns (host, port)."""

    def __init__(self, processes, tmp_path):
        self.processes = processes
        self.tmp_path = tmp_path

    def smtp_sink(self, host="127.0.0.1", flags=(), dump=False):
        """Postfix's smtp-sink; `flags` injects faults (-f/-r reject, -q/-Q disconnect, ...)."""
        if shutil.which("smtp-sink") is None:
            pytest.skip("smtp-sink not installed (Postfix); run tools/setup")
        port = free_port(host)
        argv = ["smtp-sink", "-u", "postfix", *flags]
        if dump:
            argv += ["-d", str(self.tmp_path / "sink-%M.")]
        listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        argv += [listen, "256"]
        # smtp-sink prints nothing when ready; poll the port, and it answers our probe harmlessly.
        self.processes.start(argv, "smtp-sink")
        wait_for_port(host, port)
        return host, port

    def aiosmtpd(self, host="127.0.0.1", reject_rcpt=(), greylist=(), reject_data=False,
                 auth=None, tls=None, record=True):
        port = free_port(host)
        argv = [PYTHON, str(PEERS / "aio_peer.py"), "--host", host, "--port", str(port)]
        for address in reject_rcpt:
            argv += ["--reject-rcpt", address]
        for address in greylist:
            argv += ["--greylist", address]
        if reject_data:
            argv.append("--reject-data")
        if auth:
            argv += ["--auth-user", auth[0], "--auth-password", auth[1]]
        if tls:
            argv += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
        if record:
            self.record_path = self.tmp_path / f"aiosmtpd-{port}.jsonl"
            argv += ["--record", str(self.record_path)]
        self.processes.start(argv, "aiosmtpd", ready_line="READY")
        return host, port

    def bdat_server(self, host="127.0.0.1"):
        port = free_port(host)
        argv = [PYTHON, str(PEERS / "bdat_server.py"), "--host", host, "--port", str(port)]
        self.processes.start(argv, "bdat_server", ready_line="READY")
        return host, port

    def recorded_messages(self):
        path = getattr(self, "record_path", None)
        if path is None or not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def peers(processes, tmp_path):
    return Peers(processes, tmp_path)


class Capture:
    """tcpdump on lo for one port, as a context manager that yields the capture path."""

    def __init__(self, processes, path, port):
        self.processes = processes
        self.path = path
        self.port = port

    def __enter__(self):
        if shutil.which("tcpdump") is None:
            pytest.skip("tcpdump not installed; run tools/setup")
        argv = ["tcpdump", "-i", "lo", "-s", "0", "-B", "16384", "-U", "--immediate-mode", "-n",
                "-w", str(self.path), f"tcp port {self.port}"]
        self.process = self.processes.start(argv, "tcpdump", ready_line="listening on", ready_stream="stderr")
        return self.path

    def __exit__(self, *exc):
        # Let the last segments (FIN/ACK) reach the kernel's capture buffer before stopping.
        time.sleep(0.3)
        self.processes.stop(self.process, sig=signal.SIGINT)
        _, stderr = self.processes.output(self.process)
        if exc[0] is None:
            assert self.path.exists() and self.path.stat().st_size > 24, f"tcpdump wrote nothing: {stderr}"
        return False


@pytest.fixture
def capture(processes, tmp_path):
    counter = iter(range(1000))

    def start(port):
        return Capture(processes, tmp_path / f"capture-{port}-{next(counter)}.pcap", port)

    return start


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=localhost"],
        check=True, capture_output=True, timeout=COMMAND_TIMEOUT,
    )
    return cert, key


# --------------------------------------------------------------------------------------------------
# Clients


def swaks(host, port, *args, expect_success=True):
    if shutil.which("swaks") is None:
        pytest.skip("swaks not installed; run tools/setup")
    server = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    argv = ["swaks", "--server", server, "--helo", "client.test", "--timeout", "20", *map(str, args)]
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    if expect_success:
        assert completed.returncode == 0, f"swaks failed ({completed.returncode}):\n{completed.stdout}{completed.stderr}"
    return completed


def b64(text):
    return base64.b64encode(text.encode()).decode()


# --------------------------------------------------------------------------------------------------
# Record helpers


def only_session(records, port=None):
    """The single session in records (to the given server port, if given)."""
    if port is not None:
        records = [r for r in records if (r.get("server") or {}).get("port") == port]
    assert len(records) == 1, f"expected one session, got {len(records)}: {[r.get('session_id') for r in records]}"
    return records[0]


def anomaly_kinds(record):
    return [a["kind"] for a in record.get("anomalies") or []]


def event_texts(record, sender=None):
    return [e["text"] for e in record.get("events") or [] if sender is None or e.get("from") == sender]
