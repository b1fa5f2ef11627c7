"""End-to-end: how sessions end and what the upstream is told (issue 14).

- A client that pipelines the end of its message with QUIT and half-closes at once (Exim) still gets
  every reply, and its message is delivered exactly once.
- QUIT reaches the upstream, and the client gets the upstream's 221.
- After the client's STARTTLS, its new EHLO never reaches an upstream session that already had one
  (a strict upstream, as OpenSMTPD, answers a second EHLO `503 5.5.1 Already identified`).
- The upstream leg's TLS is in the record (`upstream_tls`), and a clean TLS session is no downgrade.
- An unreachable upstream is described as it is ("connection refused").
"""
import smtplib
import socket
import time

import pytest

from postfix_peer import postfix_instances
from proxy_support import (RawClient, check_records, delivered, free_port, recorded, recorded_contents, swaks,
                           unverified_tls_context)

NO_RULES = ("--rules", "none")
MESSAGE = (b"From: a@client.test\r\nTo: b@example.org\r\nSubject: closing\r\n"
           b"Date: Mon, 07 Dec 2026 06:00:00 +0000\r\nMessage-ID: <closing@client.test>\r\n\r\n"
           b"first line\r\n.a line starting with a dot\r\nlast line\r\n")


def stuffed(content):
    return b"".join(b"." + line if line.startswith(b".") else line for line in content.splitlines(keepends=True))


def strict_lines(record_path):
    return [entry["line"] for entry in recorded(record_path) if "line" in entry]


def read_all_replies(client):
    """Every reply until the proxy closes the connection."""
    replies = []
    while True:
        code, lines = client.reply()
        if code is None:
            return replies
        replies.append((code, lines))


def upstream_events(record):
    return [event["text"] for event in record["events"] if event.get("to") == "server"]


# --------------------------------------------------------------------------------------------------
# Half-closed clients


@pytest.mark.parametrize("kind", ["strict", "aiosmtpd"])
def test_a_half_closed_client_after_pipelined_end_of_data_and_quit_gets_every_reply(proxy, upstreams, validate_record, kind):
    host, port, record_path = upstreams.aiosmtpd(*(["--pipelining"] if kind == "aiosmtpd" else []), kind=kind)
    run = proxy((host, port), *NO_RULES)
    client = RawClient(run.host, run.port)
    try:
        assert client.reply()[0] == 220
        assert client.command("EHLO client.test\r\n")[0] == 250
        client.send("MAIL FROM:<a@client.test>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
        assert [client.reply()[0] for _ in range(3)] == [250, 250, 354]
        # Exim: the content, its end and QUIT in one segment, FIN at once.
        client.send(stuffed(MESSAGE) + b".\r\nQUIT\r\n")
        client.sock.shutdown(socket.SHUT_WR)
        replies = read_all_replies(client)
    finally:
        client.close()
    assert [code for code, _ in replies] == [250, 221], replies
    assert recorded_contents(record_path) == [MESSAGE]
    [record] = run.records(1)
    check_records([record], validate_record)
    [transaction] = record["transactions"]
    assert transaction["outcome"] == "delivered"
    assert transaction["data"]["reply"]["code"] == 250
    assert record["close"] == {"by": "client", "reason": "QUIT"}
    assert upstream_events(record)[-1] == "QUIT"
    if kind == "strict":
        assert strict_lines(record_path)[-1] == "QUIT"
        assert recorded(record_path)[-1] == {"closed": True, "quit": True}


@pytest.fixture
def postfix():
    """A throwaway Postfix offering CHUNKING, holding every message it accepts."""
    instances = postfix_instances(hold=True)
    start = next(instances)
    try:
        yield start()
    finally:
        instances.close()


def test_a_half_closed_client_pipelining_bdat_last_and_quit_is_answered_and_delivered_once(proxy, postfix, validate_record):
    from test_proxy_chunking import disconnect_counts, held_messages
    run = proxy(("127.0.0.1", postfix.port), *NO_RULES)
    client = RawClient(run.host, run.port)
    try:
        assert client.reply()[0] == 220
        code, lines = client.command("EHLO client.test\r\n")
        assert code == 250 and any("CHUNKING" in line for line in lines), lines
        # Exim 4.96: MAIL / RCPT / BDAT n LAST + content / QUIT in one segment, then FIN.
        client.send(b"MAIL FROM:<a@client.test>\r\nRCPT TO:<b@example.org>\r\n"
                    + b"BDAT %d LAST\r\n" % len(MESSAGE) + MESSAGE + b"QUIT\r\n")
        client.sock.shutdown(socket.SHUT_WR)
        replies = read_all_replies(client)
    finally:
        client.close()
    assert [code for code, _ in replies] == [250, 250, 250, 221], replies
    assert len(held_messages(postfix, 1)) == 1
    [counts] = disconnect_counts(postfix)
    assert counts.get("quit") == 1, counts
    [record] = run.records(1)
    check_records([record], validate_record)
    [transaction] = record["transactions"]
    assert transaction["outcome"] == "delivered"
    assert transaction["data"]["reply"]["code"] == 250
    assert record["close"] == {"by": "client", "reason": "QUIT"}


def test_a_client_half_closing_mid_message_delivers_nothing(proxy, upstreams, validate_record):
    host, port, record_path = upstreams.aiosmtpd(kind="strict")
    run = proxy((host, port), *NO_RULES)
    client = RawClient(run.host, run.port)
    try:
        assert client.reply()[0] == 220
        assert client.command("EHLO client.test\r\n")[0] == 250
        client.send("MAIL FROM:<a@client.test>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
        assert [client.reply()[0] for _ in range(3)] == [250, 250, 354]
        client.send(MESSAGE[:40])
        client.sock.shutdown(socket.SHUT_WR)
        assert read_all_replies(client) == []
    finally:
        client.close()
    [record] = run.records(1)
    check_records([record], validate_record)
    assert recorded_contents(record_path) == []
    [transaction] = record["transactions"]
    assert transaction["outcome"] == "aborted"
    assert "." not in upstream_events(record)


# --------------------------------------------------------------------------------------------------
# QUIT


def test_quit_reaches_the_upstream_and_its_221_reaches_the_client(proxy, upstreams, validate_record, tmp_path):
    host, port, record_path = upstreams.aiosmtpd(kind="strict")
    run = proxy((host, port), *NO_RULES)
    wire = tmp_path / "message.eml"
    wire.write_bytes(stuffed(MESSAGE) + b".")  # swaks adds the CRLF
    completed = swaks(run.host, run.port, "--from", "a@client.test", "--to", "b@example.org",
                      "--data", f"@{wire}", "--no-data-fixup")
    assert "<-  221 2.0.0 Bye" in completed.stdout, completed.stdout
    assert strict_lines(record_path)[-1] == "QUIT"
    # The proxy closes the upstream leg as it relays the 221, so the upstream may note the close a
    # moment after swaks has its 221 and exits.
    deadline = time.monotonic() + 10
    while recorded(record_path)[-1] != {"closed": True, "quit": True} and time.monotonic() < deadline:
        time.sleep(0.05)
    assert recorded(record_path)[-1] == {"closed": True, "quit": True}
    [record] = run.records(1)
    check_records([record], validate_record)
    events = [(e["from"], e["to"], e["text"]) for e in record["events"]]
    assert ("proxy", "server", "QUIT") in events
    assert ("server", "proxy", "221 2.0.0 Bye") in events
    assert ("proxy", "client", "221 2.0.0 Bye") in events


# --------------------------------------------------------------------------------------------------
# The client's EHLO after its STARTTLS


def test_swaks_tls_through_a_plaintext_strict_upstream(proxy, upstreams, validate_record, tmp_path):
    host, port, record_path = upstreams.aiosmtpd(kind="strict")
    run = proxy((host, port), "--tls-cert", "auto", "--client-tls", "offer", *NO_RULES)
    wire = tmp_path / "message.eml"
    wire.write_bytes(stuffed(MESSAGE) + b".")  # swaks adds the CRLF
    completed = swaks(run.host, run.port, "--tls", "--from", "a@client.test", "--to", "b@example.org",
                      "--data", f"@{wire}", "--no-data-fixup")
    assert "TLS started" in completed.stdout
    lines = strict_lines(record_path)
    assert [line for line in lines if line.upper().startswith(("EHLO", "HELO"))] == ["EHLO client.test"], lines
    assert not [line for line in lines if line.startswith("503")]
    assert recorded_contents(record_path) == [MESSAGE]
    [record] = run.records(1)
    check_records([record], validate_record)
    assert record["tls"]["established"] is True
    assert delivered(record)
    assert [e for e in upstream_events(record) if e.startswith("EHLO")] == ["EHLO client.test"]


@pytest.mark.parametrize("upstream_offers_tls", [False, True], ids=["no-offer", "upstream-tls-off"])
def test_smtplib_starttls_through_a_strict_upstream(proxy, upstreams, validate_record, tls_cert, upstream_offers_tls):
    flags = ("--tls-cert", tls_cert[0], "--tls-key", tls_cert[1]) if upstream_offers_tls else ()
    host, port, record_path = upstreams.aiosmtpd(*flags, kind="strict")
    run = proxy((host, port), "--tls-cert", "auto", "--client-tls", "offer", "--upstream-tls", "off", *NO_RULES)
    context = unverified_tls_context()
    with smtplib.SMTP(run.host, run.port, local_hostname="client.test", timeout=20) as client:
        client.starttls(context=context)
        client.ehlo("client.test")
        assert not client.has_extn("starttls")
        client.sendmail("a@client.test", ["b@example.org"], MESSAGE)
    lines = strict_lines(record_path)
    assert [line for line in lines if line.upper().startswith(("EHLO", "HELO"))] == ["EHLO client.test"], lines
    assert "STARTTLS" not in lines
    assert recorded_contents(record_path) == [MESSAGE]
    [record] = run.records(1)
    check_records([record], validate_record)
    assert delivered(record)
    assert "upstream_tls" not in record


def test_upstream_tls_is_recorded_and_a_clean_session_is_no_downgrade(proxy, upstreams, validate_record, tls_cert, tmp_path):
    host, port, record_path = upstreams.aiosmtpd("--tls-cert", tls_cert[0], "--tls-key", tls_cert[1], kind="strict")
    run = proxy((host, port), "--tls-cert", "auto", "--client-tls", "offer", "--upstream-tls", "opportunistic", *NO_RULES)
    wire = tmp_path / "message.eml"
    wire.write_bytes(stuffed(MESSAGE) + b".")  # swaks adds the CRLF
    swaks(run.host, run.port, "--tls", "--from", "a@client.test", "--to", "b@example.org",
          "--data", f"@{wire}", "--no-data-fixup")
    lines = strict_lines(record_path)
    # EHLO, STARTTLS, and the EHLO RFC 3207 requires after the handshake; the client's own EHLO
    # after its STARTTLS stays with the proxy.
    assert [line for line in lines if line.upper().startswith(("EHLO", "STARTTLS"))] == ["EHLO client.test", "STARTTLS", "EHLO client.test"], lines
    assert recorded_contents(record_path) == [MESSAGE]
    [record] = run.records(1)
    check_records([record], validate_record)
    upstream_tls = record["upstream_tls"]
    assert upstream_tls["mode"] == "starttls"
    assert upstream_tls["established"] is True
    assert upstream_tls["version"] in ("TLSv1.2", "TLSv1.3")
    assert upstream_tls["cipher"]
    assert upstream_tls["certificate"] == "not_checked"
    assert upstream_tls["failure"] is None
    kinds = [a["kind"] for a in record["anomalies"]]
    assert "starttls_stripped" not in kinds and "upstream_tls_failed" not in kinds, kinds


def test_a_failed_upstream_handshake_is_upstream_tls_failed(proxy, upstreams, validate_record, tls_cert):
    host, port, _ = upstreams.aiosmtpd("--tls-cert", tls_cert[0], "--tls-key", tls_cert[1], kind="strict")
    # `verify` against a self-signed certificate no CA vouches for.
    run = proxy((host, port), "--upstream-tls", "verify", *NO_RULES)
    client = RawClient(run.host, run.port)
    try:
        assert client.reply()[0] == 220
        code, lines = client.command("EHLO client.test\r\n")
        assert code == 421 and lines[0].startswith("421 4.7.0"), lines
    finally:
        client.close()
    [record] = run.records(1)
    check_records([record], validate_record)
    kinds = [a["kind"] for a in record["anomalies"]]
    assert "upstream_tls_failed" in kinds and "starttls_stripped" not in kinds, kinds
    assert record["upstream_tls"]["established"] is False
    assert record["upstream_tls"]["failure"]
    run.stop()
    assert "upstream TLS handshake failed" in run.output()


# --------------------------------------------------------------------------------------------------
# Unreachable upstream, size limit


def test_a_refused_connection_is_called_connection_refused(proxy, validate_record):
    run = proxy(("127.0.0.1", free_port()), *NO_RULES)
    client = RawClient(run.host, run.port)
    assert client.reply()[0] == 421
    client.close()
    [record] = run.records(1)
    check_records([record], validate_record)
    [detail] = [a["detail"] for a in record["anomalies"] if a["kind"] == "upstream_unreachable"]
    assert detail == "upstream unreachable: connection refused", detail
    run.stop()
    assert "upstream unreachable: connection refused" in run.output()


def test_a_message_cut_at_the_size_limit_is_marked_truncated(proxy, upstreams, validate_record):
    host, port, record_path = upstreams.aiosmtpd(kind="strict")
    run = proxy((host, port), "--message-size-limit", "1000", *NO_RULES)
    # A multipart message cut in its first part: read whole it would be well-formed.
    body = (b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\nSubject: big\r\n\r\n"
            b"--b1\r\nContent-Type: text/plain\r\n\r\n" + (b"y" * 70 + b"\r\n") * 40 + b"--b1--\r\n")
    client = RawClient(run.host, run.port)
    try:
        assert client.reply()[0] == 220
        assert client.command("EHLO client.test\r\n")[0] == 250
        client.send("MAIL FROM:<a@client.test>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
        assert [client.reply()[0] for _ in range(3)] == [250, 250, 354]
        code, lines = client.command(body + b".\r\n")
        assert code == 552, lines
        assert client.command("QUIT\r\n")[0] == 221
    finally:
        client.close()
    assert recorded_contents(record_path) == []
    [record] = run.records(1)
    check_records([record], validate_record)
    [transaction] = record["transactions"]
    assert transaction["message"]["sha256"] is None
    assert transaction["message"]["subject"] == "big"
    kinds = [a["kind"] for a in record["anomalies"]]
    assert "message_truncated" in kinds, kinds
    assert not [k for k in kinds if "mime" in k or "boundary" in k or "multipart" in k], kinds
