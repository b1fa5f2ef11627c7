"""End-to-end: `smtpscope proxy --xclient` (issue 3).

A throwaway Postfix smtpd (postfix_peer.py) is the upstream. It authorises XCLIENT from 127.0.0.0/8 and
logs, through a `header_checks` WARN on Received:, the Received: header it writes, with the client
address, reverse name, HELO and protocol it believes in. With --xclient that is the proxy's client (the
PROXY header's address, or the real socket's); without it, the proxy. An aiosmtpd upstream that offers
XCLIENT and refuses it shows the session goes on without it.

Every peer runs on loopback; documentation addresses appear only inside PROXY headers and XCLIENT.
"""

import pytest

from postfix_peer import postfix_instances
from proxy_support import RawClient, check_records, delivered, recorded, swaks

HELO = "xclient-test.example"


@pytest.fixture
def postfixes():
    """start(inet_protocols="all") -> a started ThrowawayPostfix; all are stopped in teardown."""
    yield from postfix_instances()


@pytest.fixture
def postfix(postfixes):
    return postfixes()


# The repository's ./rules would spool messages, which changes how a transfer is aborted.
NO_RULES = ("--rules", "none")


def send_through(run, *proxy_header, helo=HELO):
    """One message through the proxy with swaks, optionally behind a PROXY header."""
    swaks(run.host, run.port, "--helo", helo, "--from", "a@client.test", "--to", "b@example.org", *proxy_header)


PROXY_V1 = ("--proxy-version", "1", "--proxy-family", "TCP4", "--proxy-source", "192.0.2.55",
            "--proxy-source-port", "40123", "--proxy-dest", "198.51.100.5", "--proxy-dest-port", "25")


def upstream_lines(record):
    return [event["text"] for event in record["events"] if event.get("to") == "server"]


def test_postfix_sees_the_proxy_protocol_client_with_xclient(proxy, postfix, validate_record):
    run = proxy(("127.0.0.1", postfix.port), "--proxy-protocol", "--xclient", *NO_RULES)
    send_through(run, *PROXY_V1)
    [received] = postfix.received()
    assert f"from {HELO} (unknown [192.0.2.55])" in received, received
    assert f"proto=ESMTP helo=<{HELO}>" in received
    assert "client=unknown[192.0.2.55]:40123" in postfix.log_text()
    [record] = run.records(1)
    check_records([record], validate_record)
    assert delivered(record)
    assert record["anomalies"] == []
    sent = upstream_lines(record)
    xclient = f"XCLIENT NAME=[UNAVAILABLE] ADDR=192.0.2.55 PORT=40123 HELO={HELO} PROTO=ESMTP"
    assert sent[:3] == [f"EHLO {HELO}", xclient, f"EHLO {HELO}"]
    # The client never learns the upstream offers XCLIENT.
    assert not [e for e in record["extensions"] if e.upper().startswith("XCLIENT")]


def test_postfix_sees_the_proxy_without_xclient(proxy, postfix, validate_record):
    run = proxy(("127.0.0.1", postfix.port), "--proxy-protocol", *NO_RULES)
    send_through(run, *PROXY_V1)
    [received] = postfix.received()
    assert "[127.0.0.1]" in received and "192.0.2.55" not in received, received
    [record] = run.records(1)
    check_records([record], validate_record)
    assert delivered(record)
    assert not [line for line in upstream_lines(record) if line.startswith("XCLIENT")]


def test_postfix_sees_a_direct_client_unresolved_with_xclient(proxy, postfix, validate_record):
    """No PROXY header: the address is the socket's, 127.0.0.1; Postfix, told NAME=[UNAVAILABLE], does no
    lookup of its own, where it would otherwise name the proxy localhost."""
    run = proxy(("127.0.0.1", postfix.port), "--xclient", *NO_RULES)
    send_through(run)
    [received] = postfix.received()
    assert f"from {HELO} (unknown [127.0.0.1])" in received, received
    [record] = run.records(1)
    check_records([record], validate_record)
    client_port = record["client"]["port"]
    assert f"client=unknown[127.0.0.1]:{client_port}" in postfix.log_text()


def test_postfix_sees_an_ipv6_client_named_by_the_proxy_header(proxy, postfix, validate_record):
    run = proxy(("127.0.0.1", postfix.port), "--proxy-protocol", "--xclient", *NO_RULES)
    send_through(run, "--proxy-version", "1", "--proxy-family", "TCP6", "--proxy-source", "2001:db8::10",
                 "--proxy-source-port", "40000", "--proxy-dest", "2001:db8::25", "--proxy-dest-port", "25")
    [received] = postfix.received()
    assert "(unknown [IPv6:2001:db8::10])" in received, received
    [record] = run.records(1)
    assert "XCLIENT NAME=[UNAVAILABLE] ADDR=IPV6:2001:db8::10 PORT=40000 " + f"HELO={HELO} PROTO=ESMTP" \
        in upstream_lines(record)


def test_a_postfix_without_ipv6_refuses_the_address_and_mail_still_flows(proxy, postfixes, validate_record):
    """Postfix with inet_protocols = ipv4 answers `501 5.5.4 Bad ADDR syntax`: the client's EHLO is
    answered from the first EHLO reply, nothing is flagged, and the mail goes through."""
    postfix = postfixes(inet_protocols="ipv4")
    run = proxy(("127.0.0.1", postfix.port), "--proxy-protocol", "--xclient", *NO_RULES)
    send_through(run, "--proxy-version", "1", "--proxy-family", "TCP6", "--proxy-source", "2001:db8::10",
                 "--proxy-source-port", "40000", "--proxy-dest", "2001:db8::25", "--proxy-dest-port", "25")
    [received] = postfix.received()
    assert "[127.0.0.1]" in received and "2001:db8" not in received, received
    [record] = run.records(1)
    check_records([record], validate_record)
    assert delivered(record)
    assert record["anomalies"] == []
    replies = [event["text"] for event in record["events"] if event.get("from") == "server"]
    assert any(reply.startswith("501 ") and "ADDR" in reply for reply in replies)
    assert upstream_lines(record).count(f"EHLO {HELO}") == 1, "no EHLO again after a refusal"


def test_xclient_is_sent_again_after_the_proxy_reconnects(proxy, postfix, validate_record):
    """A bare LF aborts the first transfer by closing the upstream leg; the next transaction goes over a
    new upstream connection, which is told the client's identity again before MAIL."""
    run = proxy(("127.0.0.1", postfix.port), "--proxy-protocol", "--xclient", *NO_RULES)
    client = RawClient(run.host, run.port)
    try:
        client.send(b"PROXY TCP4 192.0.2.66 198.51.100.5 50123 25\r\n")
        assert client.reply()[0] == 220
        assert client.command(f"EHLO {HELO}\r\n")[0] == 250
        assert client.command("MAIL FROM:<a@client.test>\r\n")[0] == 250
        assert client.command("RCPT TO:<b@example.org>\r\n")[0] == 250
        assert client.command("DATA\r\n")[0] == 354
        assert client.command("Subject: one\r\n\r\nbare\nLF\r\n.\r\n")[0] == 550
        assert client.command("MAIL FROM:<a@client.test>\r\n")[0] == 250
        assert client.command("RCPT TO:<b@example.org>\r\n")[0] == 250
        assert client.command("DATA\r\n")[0] == 354
        assert client.command("Subject: two\r\n\r\nfine\r\n.\r\n")[0] == 250
        assert client.command("QUIT\r\n")[0] == 221
    finally:
        client.close()
    [received] = postfix.received()
    assert f"from {HELO} (unknown [192.0.2.66])" in received, received
    [record] = run.records(1)
    check_records([record], validate_record)
    sent = upstream_lines(record)
    abort = "[connection closed: transaction aborted]"
    assert abort in sent, "the first transfer was aborted upstream"
    xclient = f"XCLIENT NAME=[UNAVAILABLE] ADDR=192.0.2.66 PORT=50123 HELO={HELO} PROTO=ESMTP"
    assert sent[:3] == [f"EHLO {HELO}", xclient, f"EHLO {HELO}"]
    # The new connection: EHLO, XCLIENT and EHLO again before the client's MAIL.
    assert sent[sent.index(abort) + 1:][:4] == [f"EHLO {HELO}", xclient, f"EHLO {HELO}", "MAIL FROM:<a@client.test>"]


def test_a_refused_xclient_is_ignored_and_mail_flows(proxy, upstreams, validate_record):
    """aiosmtpd offers XCLIENT and refuses it, as a Postfix that does not trust the proxy would."""
    host, port, record_path = upstreams.aiosmtpd("--xclient", "NAME ADDR PORT HELO PROTO LOGIN",
                                                 "--xclient-reply", "550 5.7.0 Error: insufficient authorization")
    run = proxy((host, port), "--xclient", *NO_RULES)
    send_through(run)
    [record] = run.records(1)
    check_records([record], validate_record)
    entries = recorded(record_path)
    assert [e["xclient"] for e in entries if "xclient" in e] == [record_xclient(record)]
    assert [e["rcpt_tos"] for e in entries if "rcpt_tos" in e] == [["b@example.org"]]
    assert delivered(record)
    assert record["anomalies"] == []
    assert upstream_lines(record)[:2] == [f"EHLO {HELO}", record_xclient(record)]
    assert f"EHLO {HELO}" not in upstream_lines(record)[2:], "no EHLO again after a refusal"
    run.stop()
    warnings = [line for line in run.output().splitlines() if "upstream refused XCLIENT" in line]
    assert len(warnings) == 1 and record["session_id"] in warnings[0] and "550 " in warnings[0], run.output()


def record_xclient(record):
    return f"XCLIENT NAME=[UNAVAILABLE] ADDR=127.0.0.1 PORT={record['client']['port']} HELO={HELO} PROTO=ESMTP"


def test_xclient_accepted_by_aiosmtpd_is_followed_by_a_new_ehlo(proxy, upstreams, validate_record):
    host, port, record_path = upstreams.aiosmtpd("--xclient", "ADDR HELO")
    run = proxy((host, port), "--xclient", *NO_RULES)
    send_through(run)
    [record] = run.records(1)
    check_records([record], validate_record)
    assert [e["xclient"] for e in recorded(record_path) if "xclient" in e] == [f"XCLIENT ADDR=127.0.0.1 HELO={HELO}"]
    assert upstream_lines(record)[:3] == [f"EHLO {HELO}", f"XCLIENT ADDR=127.0.0.1 HELO={HELO}", f"EHLO {HELO}"]
    assert delivered(record)
