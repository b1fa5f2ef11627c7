"""End-to-end: an upstream that does not offer PIPELINING gets one command at a time (RFC 2920 §3.1).

The proxy always offers PIPELINING to its clients. Two upstreams that do not:
- Tests/integration/peers/sync_server.py enforces synchronisation as Exim does by default
  (`smtp_enforce_sync`): a command sent before the reply to the one before ends the session with
  `554 SMTP synchronization error`;
- a throwaway Postfix smtpd that hides PIPELINING (`smtpd_discard_ehlo_keywords`) and drops clients
  that break RFC 2920's rules (`smtpd_forbid_unauth_pipelining`), keeping every message it accepts in
  its hold queue. It offers CHUNKING, whose chunks may only be pipelined where PIPELINING is offered.
Pipelining clients in front of them (swaks --pipeline, and a raw client writing a whole group, or
pipelined BDAT chunks, at once) must still get their mail through.

Every peer runs on loopback.
"""
import base64
import json

import pytest

from postfix_peer import postfix_instances
from proxy_support import HERE, PYTHON, RawClient, check_records, delivered, free_port, swaks
from test_proxy_chunking import NO_RULES, disconnect_counts, message, split, upstream_lines

SYNC_SERVER = HERE.parent / "peers" / "sync_server.py"

STRICT_WITHOUT_PIPELINING = {
    "smtpd_discard_ehlo_keywords": "pipelining",
    "smtpd_forbid_unauth_pipelining": "yes",
}


@pytest.fixture
def postfix():
    """A started ThrowawayPostfix that offers no PIPELINING and drops clients that pipeline."""
    instances = postfix_instances(hold=True, main=STRICT_WITHOUT_PIPELINING)
    start = next(instances)
    try:
        yield start()
    finally:
        instances.close()


@pytest.fixture
def sync_server(processes, tmp_path):
    """A started sync_server.py: (port, the path of its record of accepted messages)."""
    port, record = free_port(), tmp_path / "sync-record.jsonl"
    processes.start([PYTHON, str(SYNC_SERVER), "--port", str(port), "--record", str(record)], "sync_server",
                    ready_line="READY")
    return port, record


def accepted(record):
    if not record.exists():
        return []
    return [dict(entry, content=base64.b64decode(entry["content"])) for entry in map(json.loads, record.read_text().splitlines())]


def test_swaks_pipelining_through_the_proxy_to_an_upstream_that_enforces_synchronisation(proxy, sync_server, validate_record, tmp_path):
    port, record = sync_server
    run = proxy(("127.0.0.1", port), *NO_RULES)
    content = message([b"one", b".two"], "swaks")
    wire = tmp_path / "message.eml"
    wire.write_bytes(content.replace(b"\r\n.", b"\r\n..") + b".")  # as --no-data-fixup sends it: stuffed, then "."
    completed = swaks(run.host, run.port, "--pipeline", "--from", "a@client.test",
                      "--to", "b@example.org,c@example.org", "--data", f"@{wire}", "--no-data-fixup")
    assert "PIPELINING" in completed.stdout, "the proxy offers PIPELINING to its client"
    [message_accepted] = accepted(record)
    assert message_accepted["rcpt"] == ["<b@example.org>", "<c@example.org>"]
    assert message_accepted["content"] == content
    records = run.records(1)
    check_records(records, validate_record, count=1)
    assert len(delivered(records[0])) == 1


def test_a_pipelined_group_with_local_and_relayed_commands_keeps_its_order(proxy, sync_server, validate_record):
    port, record = sync_server
    run = proxy(("127.0.0.1", port), *NO_RULES)
    client = RawClient(run.host, run.port)
    content = message([b"body"], "group")
    try:
        assert client.reply()[0] == 220
        assert client.command("EHLO client.test\r\n")[0] == 250
        client.send(b"NOOP\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<b@example.org>\r\nNOOP\r\n"
                    b"RCPT TO:<c@example.org>\r\nDATA\r\n")
        codes = [client.reply()[0] for _ in range(6)]
        assert codes == [250, 250, 250, 250, 250, 354], codes
        client.send(content + b".\r\nRSET\r\nMAIL FROM:<d@client.test>\r\nRCPT TO:<e@example.org>\r\nQUIT\r\n")
        codes = [client.reply()[0] for _ in range(5)]
        assert codes == [250, 250, 250, 250, 221], codes
    finally:
        client.close()
    [message_accepted] = accepted(record)
    assert message_accepted["content"] == content
    records = run.records(1)
    check_records(records, validate_record, count=1)
    assert records[0]["close"]["reason"] == "QUIT"


def assert_never_pipelined(postfix):
    log = postfix.log_text()
    assert "improper command pipelining" not in log, log


def test_a_pipelined_group_and_pipelined_chunks_go_upstream_in_lockstep(proxy, postfix, validate_record):
    run = proxy(("127.0.0.1", postfix.port), *NO_RULES)
    client = RawClient(run.host, run.port)
    content = message([b"first", b".dotted", b"last"], "lockstep")
    try:
        assert client.reply()[0] == 220
        code, lines = client.command("EHLO client.test\r\n")
        assert code == 250 and any("PIPELINING" in line for line in lines) and any("CHUNKING" in line for line in lines), lines
        # One write: a whole transaction's envelope, then every chunk, pipelined.
        chunks = split(content, [30, 60])
        wire = b"MAIL FROM:<a@client.test>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\n"
        for index, chunk in enumerate(chunks):
            last = b" LAST" if index == len(chunks) - 1 else b""
            wire += b"BDAT %d%s\r\n" % (len(chunk), last) + chunk
        client.send(wire + b"QUIT\r\n")
        codes = [client.reply()[0] for _ in range(3 + len(chunks) + 1)]
        assert codes == [250, 250, 250] + [250] * len(chunks) + [221], codes
    finally:
        client.close()
    assert len(postfix.stored(1)) == 1
    assert_never_pipelined(postfix)
    # Postfix offers CHUNKING but not PIPELINING, so the chunks went as one DATA.
    [counts] = disconnect_counts(postfix)
    assert counts.get("data") == 1 and "bdat" not in counts, counts
    records = run.records(1)
    check_records(records, validate_record, count=1)
    commands = [line for line in upstream_lines(records[0]) if not line.startswith("[")]
    assert commands[-6:] == ["MAIL FROM:<a@client.test>", "RCPT TO:<b@example.org>", "RCPT TO:<c@example.org>",
                             "DATA", ".", "QUIT"], commands
