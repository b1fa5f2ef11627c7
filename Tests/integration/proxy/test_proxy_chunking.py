"""End-to-end: BDAT relayed as BDAT when the upstream offers CHUNKING (RFC 3030).

The upstream is a throwaway Postfix smtpd (postfix_peer.py), which offers CHUNKING and keeps every
message it accepts in its hold queue (`hold=True`), where `postcat` reads it back. A raw-socket client
sends BDAT chunks through `smtpscope proxy`; each chunk goes upstream raw under its own `BDAT n`, and the
proxy ends the message with `BDAT 0 LAST` once it has checked every octet. Postfix counts the BDAT
commands it received in its `disconnect` log line (`bdat=N`).

Tests/integration/peers/bdat_server.py, a minimal CHUNKING peer, answers LAST with the number of
octets it read: the exact count the upstream got.

Every peer runs on loopback.
"""
import re
import subprocess
import time

import pytest

from postfix_peer import POSTFIX_WAIT, postfix_instances
from proxy_support import COMMAND_TIMEOUT, HERE, PYTHON, RawClient, check_records, delivered, free_port

BDAT_SERVER = HERE.parent / "peers" / "bdat_server.py"

# The repository's ./rules would spool messages, which sends them upstream as DATA.
NO_RULES = ("--rules", "none")


@pytest.fixture
def postfix():
    """A started ThrowawayPostfix holding every message it accepts; stopped in teardown."""
    instances = postfix_instances(hold=True)
    start = next(instances)
    try:
        yield start()
    finally:
        instances.close()


def message(body_lines, subject="chunked"):
    """A message with the headers Postfix would otherwise add for a client on an inet interface."""
    header = (f"From: a@client.test\r\nTo: b@example.org\r\nSubject: {subject}\r\n"
              f"Date: Sun, 29 Nov 2026 06:45:01 +0000\r\nMessage-ID: <{subject}@client.test>\r\n\r\n")
    return header.encode() + b"".join(line + b"\r\n" for line in body_lines)


DOTTED = message([b"first line", b".a line starting with one dot", b"..two dots", b".", b"last line"], "dotted")


def greet(client):
    code, _ = client.reply()
    assert code == 220
    code, lines = client.command("EHLO client.test\r\n")
    assert code == 250, lines
    assert any("CHUNKING" in line for line in lines), lines


def start_transaction(client):
    greet(client)
    assert client.command("MAIL FROM:<a@client.test>\r\n")[0] == 250
    assert client.command("RCPT TO:<b@example.org>\r\n")[0] == 250


def split(content, sizes):
    """`content` cut into chunks of the given sizes, the last one taking the rest."""
    chunks, start = [], 0
    for size in sizes:
        chunks.append(content[start:start + size])
        start += size
    chunks.append(content[start:])
    return chunks


def send_chunks(client, chunks):
    """Each chunk as its own BDAT, the last one LAST; returns the replies."""
    replies = []
    for index, chunk in enumerate(chunks):
        last = b" LAST" if index == len(chunks) - 1 else b""
        replies.append(client.command(b"BDAT %d%s\r\n" % (len(chunk), last) + chunk))
    return replies


def held_messages(postfix, count):
    """The held messages as postcat prints them (header and body, LF line ends), waiting for `count`."""
    hold = postfix.directory / "queue" / "hold"
    deadline = time.monotonic() + POSTFIX_WAIT
    while True:
        files = sorted((p for p in hold.rglob("*") if p.is_file()), key=lambda p: p.stat().st_mtime) if hold.is_dir() else []
        if len(files) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    out = []
    for path in files:
        completed = subprocess.run(["postcat", "-c", str(postfix.directory), "-bh", str(path)],
                                   capture_output=True, timeout=COMMAND_TIMEOUT)
        assert completed.returncode == 0, completed.stderr
        out.append(completed.stdout)
    return out


def without_received(stored):
    """Postfix's stored message minus the Received: header it prepended (and its folded lines)."""
    lines = stored.split(b"\n")
    assert lines[0].startswith(b"Received: "), lines[:3]
    index = 1
    while lines[index].startswith((b"\t", b" ")):
        index += 1
    return b"\n".join(lines[index:])


def as_stored(content):
    """What postcat prints for a message that ends in CRLF: its lines, LF-terminated."""
    return content.replace(b"\r\n", b"\n")


def disconnect_counts(postfix):
    """The command counts of Postfix's `disconnect from` log lines, e.g. {"bdat": 4, "quit": 1}."""
    deadline = time.monotonic() + POSTFIX_WAIT
    while True:
        lines = [line for line in postfix.log_text().splitlines() if "disconnect from" in line]
        if lines or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return [dict((k, int(v.split("/")[0])) for k, v in re.findall(r"\b(\w+)=(\d+(?:/\d+)?)", line)) for line in lines]


def upstream_lines(record):
    return [event["text"] for event in record["events"] if event.get("to") == "server"]


def test_chunks_reach_postfix_as_bdat_byte_for_byte(proxy, postfix, validate_record):
    run = proxy(("127.0.0.1", postfix.port), *NO_RULES)
    client = RawClient(run.host, run.port)
    chunks = split(DOTTED, [40, 70])
    try:
        start_transaction(client)
        replies = send_chunks(client, chunks)
        assert [code for code, _ in replies] == [250, 250, 250], replies
        # Postfix's own replies: bytes received per chunk, then the queue id for the LAST.
        assert "queued as" in replies[-1][1][0], replies
        assert client.command("QUIT\r\n")[0] == 221
    finally:
        client.close()
    [stored] = held_messages(postfix, 1)
    assert without_received(stored) == as_stored(DOTTED), "lines starting with '.' stay as sent: no stuffing"
    # Three client chunks and the proxy's BDAT 0 LAST; no DATA.
    [counts] = disconnect_counts(postfix)
    assert counts.get("bdat") == 4 and "data" not in counts, counts
    [record] = run.records(1)
    check_records([record], validate_record)
    [transaction] = delivered(record)
    assert transaction["data"]["command"] == "BDAT"
    assert transaction["data"]["chunks"] == 3
    assert transaction["data"]["size"] == len(DOTTED)
    assert transaction["data"]["reply"]["code"] == 250 and "queued as" in transaction["data"]["reply"]["text"]
    # The message facts come from the octets the proxy read, as on the DATA path.
    assert transaction["message"]["subject"] == "dotted"
    assert transaction["message"]["message_id"] == "<dotted@client.test>"
    assert transaction["message"]["size"] == len(DOTTED)
    sent = upstream_lines(record)
    assert [line for line in sent if line.startswith(("BDAT", "DATA"))] == \
        [f"BDAT {len(chunk)}" for chunk in chunks] + ["BDAT 0 LAST"], sent
    assert record["outcome"] == "completed"


def test_pipelined_chunks_are_answered_in_order(proxy, postfix, validate_record):
    run = proxy(("127.0.0.1", postfix.port), *NO_RULES)
    client = RawClient(run.host, run.port)
    content = message([b"line %d of a pipelined message" % n for n in range(200)], "pipelined")
    chunks = split(content, [1000, 1000, 1000])
    try:
        greet(client)
        wire = b"MAIL FROM:<a@client.test>\r\nRCPT TO:<b@example.org>\r\n"
        for index, chunk in enumerate(chunks):
            wire += b"BDAT %d%s\r\n" % (len(chunk), b" LAST" if index == len(chunks) - 1 else b"") + chunk
        client.send(wire + b"QUIT\r\n")
        replies = [client.reply() for _ in range(2 + len(chunks) + 1)]
    finally:
        client.close()
    codes = [code for code, _ in replies]
    assert codes == [250, 250, 250, 250, 250, 250, 221], replies
    # A middle chunk gets Postfix's byte count, the LAST its queue id.
    assert all("queued" not in lines[0] for _, lines in replies[2:5]), replies
    assert "queued as" in replies[5][1][0], replies
    [stored] = held_messages(postfix, 1)
    assert without_received(stored) == as_stored(content)
    [record] = run.records(1)
    check_records([record], validate_record)
    assert delivered(record)[0]["data"]["chunks"] == 4


def test_a_5mb_message_in_chunks(proxy, postfix, validate_record):
    run = proxy(("127.0.0.1", postfix.port), *NO_RULES)
    client = RawClient(run.host, run.port, timeout=120)
    body = [b"%07d ." % n + b"x" * 68 for n in range(5 * 1024 * 1024 // 78)]
    content = message(body, "large")
    assert len(content) >= 5 * 1000 * 1000
    chunks = split(content, [1024 * 1024] * 4)
    try:
        start_transaction(client)
        replies = send_chunks(client, chunks)
        assert [code for code, _ in replies] == [250] * 5, replies
        assert client.command("QUIT\r\n")[0] == 221
    finally:
        client.close()
    [stored] = held_messages(postfix, 1)
    assert without_received(stored) == as_stored(content)
    [record] = run.records(1)
    check_records([record], validate_record)
    [transaction] = delivered(record)
    assert transaction["data"]["size"] == len(content)
    assert transaction["data"]["chunks"] == 5


def test_a_bare_lf_mid_chunk_never_reaches_postfix_as_a_message(proxy, postfix, validate_record):
    run = proxy(("127.0.0.1", postfix.port), *NO_RULES)
    client = RawClient(run.host, run.port)
    bad = message([b"clean line", b"smuggled\n.\nMAIL FROM:<s@x.test>", b"tail"], "smuggled")
    good = message([b"the message after"], "after")
    try:
        start_transaction(client)
        first, rest = bad[:30], bad[30:]
        assert client.command(b"BDAT %d\r\n" % len(first) + first)[0] == 250
        code, lines = client.command(b"BDAT %d LAST\r\n" % len(rest) + rest)
        assert code == 550 and lines[0].startswith("550 5.5.2"), lines
        # The session goes on: the next message reaches Postfix over a new upstream connection.
        assert client.command("MAIL FROM:<a@client.test>\r\n")[0] == 250
        assert client.command("RCPT TO:<b@example.org>\r\n")[0] == 250
        code, lines = client.command(b"BDAT %d LAST\r\n" % len(good) + good)
        assert code == 250, lines
        assert client.command("QUIT\r\n")[0] == 221
    finally:
        client.close()
    stored = held_messages(postfix, 1)
    assert [without_received(m) for m in stored] == [as_stored(good)], "only the clean message is stored"
    [record] = run.records(1)
    check_records([record], validate_record)
    assert "bare_lf_in_data" in [a["kind"] for a in record["anomalies"]]
    aborted, sent = record["transactions"]
    assert aborted["data"]["reply"]["code"] == 550
    assert sent["outcome"] == "delivered"
    lines = upstream_lines(record)
    assert "[connection closed: transaction aborted]" in lines
    assert lines.count("BDAT 0 LAST") == 1, lines
    assert not any("MAIL FROM:<s@x.test>" in line for line in lines)


def test_a_message_without_a_final_crlf_gets_one(proxy, processes, validate_record):
    """bdat_server.py answers LAST with the octets it read: the content plus the CRLF the proxy adds,
    as the DATA path would (`BDAT 2 LAST`)."""
    port = free_port()
    processes.start([PYTHON, str(BDAT_SERVER), "--port", str(port)], "bdat_server", ready_line="READY")
    run = proxy(("127.0.0.1", port), *NO_RULES)
    client = RawClient(run.host, run.port)
    content = b"Subject: no end\r\n\r\nno CRLF at the end"
    try:
        start_transaction(client)
        [(code, lines)] = send_chunks(client, [content])
        assert code == 250, lines
        assert lines[0] == f"250 2.0.0 Ok: {len(content) + 2} octets queued as B1D2", lines
        assert client.command("QUIT\r\n")[0] == 221
    finally:
        client.close()
    [record] = run.records(1)
    check_records([record], validate_record)
    sent = upstream_lines(record)
    assert [line for line in sent if line.startswith("BDAT")] == [f"BDAT {len(content)}", "BDAT 2 LAST"], sent
    assert delivered(record)[0]["data"]["size"] == len(content)
