"""End-to-end: several `smtpscope proxy` instances behind HAProxy, transcripts to rsyslog (issue 5).

A real HAProxy runs the shipped tools/deploy/haproxy.cfg (ports from its environment variables): TCP
mode, round robin, PROXY v2 to two instances started with `--proxy-protocol --transcripts
syslog+tcp://127.0.0.1:PORT`. A real rsyslogd, in the foreground with a configuration of its own (imtcp
on a loopback port, a large maxMessageSize, no imuxsock/imklog, a work directory under tmp), writes each
message's MSG (the JSON record) to one file and the raw message to another. The upstream is aiosmtpd.

Clients connect from 127.0.0.1 and from 127.0.0.2, so the address that reaches the rules and the
records can only be the real client's, carried by HAProxy's PROXY v2 header: HAProxy itself always
connects to the instances from 127.0.0.1.
"""
import json
import os
import pathlib
import re
import shutil
import signal
import smtplib
import time

import pytest

from proxy_support import COMMAND_TIMEOUT, check_records, free_port, integration, listening, read_records, recorded

HAPROXY_CFG = integration.REPO_ROOT / "tools" / "deploy" / "haproxy.cfg"
ARRIVAL_WAIT = 60
SYSLOG_HEADER = re.compile(r"^<(\d+)>1 (\S+) (\S+) (\S+) (\S+) (\S+) (-|\[.*?\]) ")
REJECT_TEXT = "client 127.0.0.2 may not send here"

RULES = """
rule "loopback-client" on connect
  when client.ip in [127.0.0.0/8]
  tag "loopback"

rule "second-loopback-refused" on mail
  when client.ip in [127.0.0.2/32]
  reject 550 5.7.1 "client ${client.ip} may not send here"
"""


class Rsyslog:
    """rsyslogd -n with its own configuration: imtcp on a free loopback port, nothing else."""

    def __init__(self, processes, directory):
        self.processes = processes
        self.directory = directory
        self.port = free_port()
        self.messages = directory / "messages.jsonl"
        self.raw = directory / "raw.log"
        self.config = directory / "rsyslog.conf"
        self.pidfile = directory / "rsyslogd.pid"
        work = directory / "work"
        work.mkdir(parents=True, exist_ok=True)
        # maxMessageSize must come before the input module is loaded; the default (8k) would cut
        # every record with more than a few dozen events.
        self.config.write_text(f"""
global(workDirectory="{work}" maxMessageSize="4m")
module(load="imtcp")
template(name="msg_only" type="string" string="%msg%\\n")
template(name="raw" type="string" string="%rawmsg%\\n")
ruleset(name="smtpscope") {{
    action(type="omfile" file="{self.messages}" template="msg_only")
    action(type="omfile" file="{self.raw}" template="raw")
}}
input(type="imtcp" address="127.0.0.1" port="{self.port}" ruleset="smtpscope")
""")
        self.process = None

    @property
    def url(self):
        return f"syslog+tcp://127.0.0.1:{self.port}"

    def start(self):
        self.process = self.processes.start(
            ["rsyslogd", "-n", "-f", str(self.config), "-i", str(self.pidfile)], "rsyslogd")
        deadline = time.monotonic() + integration.PEER_START_TIMEOUT
        while not listening(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                stdout, stderr = self.processes.output(self.process)
                raise AssertionError(f"rsyslogd did not listen on {self.port} (exit {self.process.returncode}):"
                                     f"\n{stdout}{stderr}")
            time.sleep(0.05)

    def stop(self):
        """SIGTERM: rsyslogd writes what it has queued and exits; waits until the port is free."""
        self.processes.stop(self.process, sig=signal.SIGTERM, timeout=20)
        deadline = time.monotonic() + integration.PEER_START_TIMEOUT
        while listening(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not listening(self.port), "rsyslogd still listens after it exited"

    def lines(self, path):
        return [line for line in path.read_text(errors="replace").splitlines() if line] if path.exists() else []

    def records(self, expected):
        """Every MSG as parsed JSON, waiting up to ARRIVAL_WAIT s for `expected` of them."""
        deadline = time.monotonic() + ARRIVAL_WAIT
        while len(self.lines(self.messages)) < expected and time.monotonic() < deadline:
            time.sleep(0.1)
        records = []
        for number, line in enumerate(self.lines(self.messages), 1):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise AssertionError(f"message {number} at rsyslog is not a whole JSON record ({error}): "
                                     f"{line[:120]!r}...{line[-120:]!r} ({len(line)} octets)")
        return records

    def headers(self):
        """(PRI, TIMESTAMP, HOSTNAME, APP-NAME, PROCID, MSGID, SD, MSG) of every raw message."""
        parsed = []
        for line in self.lines(self.raw):
            match = SYSLOG_HEADER.match(line)
            assert match, f"not an RFC 5424 message: {line[:200]!r}"
            parsed.append((*match.groups(), line[match.end():]))
        return parsed


@pytest.fixture
def rsyslog(processes, tmp_path):
    if shutil.which("rsyslogd") is None:
        pytest.skip("rsyslogd not installed (Debian package rsyslog); run tools/setup")
    collector = Rsyslog(processes, tmp_path / "rsyslog")
    collector.start()
    return collector


@pytest.fixture
def haproxy(processes):
    """start(instance1, instance2) -> the frontend port of tools/deploy/haproxy.cfg."""
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy not installed; run tools/setup")

    def start(first, second):
        port = free_port()
        env = {**os.environ, "SMTPSCOPE_FRONTEND": f"127.0.0.1:{port}",
               "SMTPSCOPE_1": f"127.0.0.1:{first.port}", "SMTPSCOPE_2": f"127.0.0.1:{second.port}"}
        process = processes.start(["haproxy", "-f", str(HAPROXY_CFG), "-db"], "haproxy", env=env)
        deadline = time.monotonic() + integration.PEER_START_TIMEOUT
        while not listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                stdout, stderr = processes.output(process)
                raise AssertionError(f"haproxy did not listen on {port} (exit {process.returncode}):\n{stdout}{stderr}")
            time.sleep(0.05)
        return port

    return start


@pytest.fixture
def rules_dir(tmp_path):
    directory = tmp_path / "rules"
    directory.mkdir()
    (directory / "10-clients.rules").write_text(RULES)
    return directory


def start_instances(proxy, upstream, rules_dir, first_transcripts, second_transcripts):
    """Two instances; each `--transcripts` is a syslog URL or None for the instance's own directory."""
    runs = []
    for transcripts in (first_transcripts, second_transcripts):
        extra = ["--proxy-protocol", "--rules", rules_dir]
        if transcripts is not None:
            # The last --transcripts wins over the fixture's directory.
            extra += ["--transcripts", transcripts]
        runs.append(proxy(upstream, *extra))
    return runs


def send_session(port, source, noops=0):
    """One session from `source` (an address on lo) through HAProxy: EHLO, NOOPs, one message.
    Returns (client port as HAProxy saw it, MAIL reply)."""
    client = smtplib.SMTP("127.0.0.1", port, local_hostname="client.example", timeout=COMMAND_TIMEOUT,
                          source_address=(source, 0))
    try:
        client_port = client.sock.getsockname()[1]
        client.ehlo()
        for _ in range(noops):
            assert client.noop()[0] == 250
        mail = client.mail("a@client.example")
        if mail[0] == 250:
            assert client.rcpt("b@example.org")[0] == 250
            assert client.data(b"Subject: scale out\r\n\r\nHello.\r\n")[0] == 250
        client.quit()
    finally:
        client.close()
    return client_port, mail


@pytest.mark.parametrize("variant", ["both-syslog", "syslog-and-file"])
def test_instances_behind_haproxy_send_whole_records_to_rsyslog(
        variant, proxy, upstreams, haproxy, rsyslog, rules_dir, smtpscope, validate_record):
    upstream_host, upstream_port, upstream_record = upstreams.aiosmtpd()
    second = rsyslog.url if variant == "both-syslog" else None
    runs = start_instances(proxy, (upstream_host, upstream_port), rules_dir, rsyslog.url, second)
    port = haproxy(*runs)

    # 20 sessions; every fourth from 127.0.0.2, which the rule refuses; one with 400 NOOPs, whose
    # record (800 more events) is far over rsyslog's default 8k message size.
    sent = {}
    for index in range(20):
        source = "127.0.0.2" if index % 4 == 3 else "127.0.0.1"
        client_port, mail = send_session(port, source, noops=400 if index == 5 else 0)
        sent[(source, client_port)] = mail
    refused = [key for key in sent if key[0] == "127.0.0.2"]
    assert len(refused) == 5
    for key, mail in sent.items():
        if key[0] == "127.0.0.2":
            # The client gets the rule's reply, naming the address the rules saw.
            assert mail[0] == 550 and REJECT_TEXT in mail[1].decode(), mail
        else:
            assert mail[0] == 250, mail

    syslog_runs = runs if variant == "both-syslog" else runs[:1]
    file_runs = [] if variant == "both-syslog" else runs[1:]
    file_records = []
    for run in file_runs:
        # Stopping flushes; the file instance served every other session (round robin).
        run.stop()
        file_records += read_records(run.transcripts)
    expected_at_syslog = len(sent) - len(file_records)
    records = rsyslog.records(expected_at_syslog)
    check_records(records + file_records, validate_record, count=len(sent))
    assert len({r["session_id"] for r in records + file_records}) == len(sent), "session ids are not unique"

    # The real client, not HAProxy's 127.0.0.1: the address and source port of each client socket.
    by_client = {(r["client"]["ip"], r["client"]["port"]): r for r in records + file_records}
    assert set(by_client) == set(sent)
    for key, record in by_client.items():
        assert record["server"] == {"ip": "127.0.0.1", "port": port}, record["server"]
        tagged = [v for v in record["rules"] if v["rule"] == "loopback-client"]
        assert tagged and tagged[0]["action"] == "tag", record["rules"]
        [transaction] = record["transactions"]
        if key[0] == "127.0.0.2":
            assert transaction["outcome"] == "rejected"
            assert transaction["mail_from"]["reply"]["code"] == 550
            assert [v["rule"] for v in transaction["rules"]] == ["second-loopback-refused"]
            assert record["outcome"] == "rejected"
        else:
            assert transaction["outcome"] == "delivered"
            assert transaction["rules"] == []
            assert record["outcome"] == "completed"
    assert len(recorded(upstream_record)) == 15, "the upstream got every message of 127.0.0.1 and none of 127.0.0.2"

    # The big record arrived whole, in one message.
    assert max(len(json.dumps(r)) for r in records + file_records) > 40_000
    biggest = max(records, key=lambda r: len(r["events"]), default=None)
    if variant == "both-syslog":
        assert sum(1 for e in biggest["events"] if e["text"] == "NOOP") == 400

    # Both instances served sessions: the syslog PROCID is the instance's process id.
    headers = rsyslog.headers()
    assert len(headers) == len(records)
    pids = {str(run.process.pid) for run in syslog_runs}
    served = {procid for (_, _, _, _, procid, _, _, _) in headers}
    assert served == pids, (served, pids)
    if file_runs:
        assert len(file_records) == 10 and len(records) == 10
    for (pri, timestamp, hostname, app, _, msgid, sd, msg), record in zip(headers, records):
        # facility mail (2): info (22) for completed sessions, notice (21) for the rest.
        assert pri == ("22" if record["outcome"] == "completed" else "21")
        assert (app, msgid, sd) == ("smtpscope", "session", "-")
        assert timestamp == record["end"]
        assert hostname not in ("", "-")
        assert json.loads(msg) == record and not msg.startswith("\ufeff")

    # `smtpscope report` over the merged transcripts of both instances counts every session.
    inputs = [rsyslog.messages] + [path for run in file_runs for path in sorted(run.transcripts.glob("*.jsonl"))]
    report = smtpscope.run("report", *inputs)
    assert report.returncode == 0, report.stderr
    assert f"{len(inputs)} file{'s' if len(inputs) > 1 else ''}, {len(sent)} sessions (proxy {len(sent)})" in report.stdout, \
        report.stdout
    for run in runs:
        assert run.stop() == 0, run.output()


def test_records_held_while_the_collector_restarts_arrive_afterwards(
        proxy, upstreams, haproxy, rsyslog, rules_dir, validate_record):
    upstream_host, upstream_port, _ = upstreams.aiosmtpd()
    runs = start_instances(proxy, (upstream_host, upstream_port), rules_dir, rsyslog.url, rsyslog.url)
    port = haproxy(*runs)

    before = [send_session(port, "127.0.0.1")[0] for _ in range(2)]
    assert len(rsyslog.records(2)) == 2
    rsyslog.stop()

    # Each instance notices the closed connection and holds its records in memory.
    during = [send_session(port, "127.0.0.1")[0] for _ in range(4)]
    rsyslog.start()
    after = [send_session(port, "127.0.0.1")[0] for _ in range(2)]
    # Held records go with the next record once the collector is back, and at the latest at shutdown.
    for run in runs:
        assert run.stop() == 0, run.output()

    records = rsyslog.records(8)
    check_records(records, validate_record, count=8)
    assert sorted(r["client"]["port"] for r in records) == sorted(before + during + after)
    assert len({r["session_id"] for r in records}) == 8
    for run in runs:
        output = run.output()
        assert f"syslog collector {rsyslog.url} unreachable" in output, output
        assert "dropped" not in output, output


def test_transcripts_on_standard_output_for_container_logs(proxy, upstreams, processes, validate_record):
    """`--transcripts -`: standard output carries only the records, one JSON line each, as a container
    runtime's log driver collects them; the banner and logs go to standard error."""
    upstream_host, upstream_port, _ = upstreams.aiosmtpd()
    run = proxy((upstream_host, upstream_port), "--rules", "none", "--transcripts", "-")
    ports = [send_session(run.port, "127.0.0.1")[0] for _ in range(3)]
    deadline = time.monotonic() + ARRIVAL_WAIT
    while processes.output(run.process)[0].count("\n") < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert run.stop() == 0
    stdout, stderr = processes.output(run.process)
    lines = stdout.splitlines()
    records = [json.loads(line) for line in lines]
    check_records(records, validate_record, count=3)
    assert [r["client"]["port"] for r in records] == ports
    assert "smtpscope proxy" in stderr and "standard output (JSON Lines)" in stderr
    assert list(run.transcripts.iterdir()) == [], "nothing is written to the directory"


@pytest.mark.parametrize("url, problem", [
    ("syslog+tcp://127.0.0.1", "the port is missing"),
    ("syslog+tcp://::1:514", "brackets"),
    ("syslog+udp://127.0.0.1:514", "only syslog+tcp"),
    ("syslog+tcp://127.0.0.1:99999", "is not a port"),
])
def test_a_bad_syslog_url_is_a_usage_error_naming_the_flag(smtpscope, url, problem):
    result = smtpscope.run("proxy", "--listen", f"127.0.0.1:{free_port()}", "--transcripts", url, timeout=COMMAND_TIMEOUT)
    assert result.returncode == 2, result.stderr
    assert f"--transcripts {url}" in result.stderr and problem in result.stderr, result.stderr
    assert "syslog+tcp://HOST:PORT" in result.stderr
