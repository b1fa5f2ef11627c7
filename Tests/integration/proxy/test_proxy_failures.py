"""End-to-end: failures are answered, not dropped; smuggling never reaches the upstream, since content
is re-written canonically and a bare CR, bare LF or NUL ends the transaction."""
import time

import pytest

from proxy_support import RawClient, check_records, free_port, recorded, sink_dumps, swaks

CONTENT = b"Subject: failure test\r\n\r\n" + b"line of content for the failure tests\r\n" * 500


def open_transaction(client):
    assert client.reply()[0] == 220
    assert client.command("EHLO raw.client.test\r\n")[0] == 250
    assert client.command("MAIL FROM:<a@client.test>\r\n")[0] == 250
    assert client.command("RCPT TO:<b@upstream.test>\r\n")[0] == 250
    assert client.command("DATA\r\n")[0] == 354


def test_upstream_down_at_connect_gives_a_421_greeting(proxy, validate_record):
    closed_port = free_port()
    run = proxy(("127.0.0.1", closed_port))
    client = RawClient(run.host, run.port)
    code, lines = client.reply()
    assert code == 421 and "4.4.1" in lines[0], lines
    client.close()
    records = run.records(1)
    check_records(records, validate_record, count=1)
    record = records[0]
    assert record["transactions"] == []
    assert record["outcome"] in ("server_closed", "tempfail")
    # the proxy keeps serving: the next client is answered the same way
    second = RawClient(run.host, run.port)
    assert second.reply()[0] == 421
    second.close()


def test_upstream_closing_mid_data_gives_4_4_2(proxy, upstreams, validate_record):
    host, port, record_path = upstreams.aiosmtpd("--drop-after", "100", kind="drop-in-data")
    run = proxy((host, port))
    client = RawClient(run.host, run.port)
    open_transaction(client)
    try:
        client.send(CONTENT + b".\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    code, lines = client.reply()
    assert code in (421, 451) and "4.4.2" in lines[0], lines
    client.close()
    assert recorded(record_path) == [{"dropped": True, "octets": 100}]
    records = run.records(1)
    check_records(records, validate_record, count=1)
    [transaction] = records[0]["transactions"]
    assert transaction["outcome"] in ("tempfailed", "aborted")


def test_client_vanishing_mid_data_delivers_nothing(proxy, upstreams, validate_record):
    host, port, record_path = upstreams.aiosmtpd()
    run = proxy((host, port))
    client = RawClient(run.host, run.port)
    open_transaction(client)
    client.send(CONTENT[: len(CONTENT) // 2])
    time.sleep(0.3)
    client.close()
    records = run.records(1)
    check_records(records, validate_record, count=1)
    [transaction] = records[0]["transactions"]
    assert transaction["outcome"] == "aborted"
    assert records[0]["close"]["by"] == "client"
    assert recorded(record_path) == []
    # the proxy is still serving
    swaks(run.host, run.port, "--from", "a@client.test", "--to", "b@upstream.test")
    assert len(recorded(record_path)) == 1


SMUGGLED = b"MAIL FROM:<s@evil.test>\r\nRCPT TO:<v@upstream.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nP content\r\n"


@pytest.mark.parametrize("terminator", [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r", b"\r.\n", b"\n.\r", b"\r.\r\n"],
                         ids=["LF.LF", "LF.CRLF", "CRLF.LF", "CR.CR", "CR.LF", "LF.CR", "CR.CRLF"])
def test_smuggling_payload_is_refused_and_nothing_reaches_aiosmtpd(proxy, upstreams, validate_record, terminator):
    host, port, record_path = upstreams.aiosmtpd()
    run = proxy((host, port))
    client = RawClient(run.host, run.port)
    open_transaction(client)
    client.send(b"Subject: carrier\r\n\r\nhello" + terminator + SMUGGLED + b".\r\n")
    code, lines = client.reply()
    assert code == 550 and "5.5.2" in lines[0], lines
    assert client.command("QUIT\r\n")[0] == 221
    client.close()
    assert recorded(record_path) == []
    records = run.records(1)
    check_records(records, validate_record, count=1)
    record = records[0]
    [transaction] = record["transactions"]
    assert transaction["outcome"] == "rejected"
    assert transaction["data"]["reply"]["code"] == 550
    kinds = [a["kind"] for a in record.get("anomalies") or []]
    assert any(kind in kinds for kind in ("bare_lf_in_data", "bare_cr_in_data"))
    assert "s@evil.test" not in [t["mail_from"]["address"] for t in record["transactions"]]


def test_smuggling_payload_leaves_no_message_at_smtp_sink(proxy, upstreams, validate_record):
    host, port, dump = upstreams.smtp_sink()
    run = proxy((host, port))
    client = RawClient(run.host, run.port)
    open_transaction(client)
    client.send(b"Subject: carrier\r\n\r\nhello\n.\n" + SMUGGLED + b".\r\n")
    code, lines = client.reply()
    assert code == 550 and "5.5.2" in lines[0], lines
    assert client.command("QUIT\r\n")[0] == 221
    client.close()
    time.sleep(0.5)
    # smtp-sink writes its dump file as the transaction runs; an aborted one must not hold P, and no
    # transaction may have completed.
    for body in sink_dumps(dump):
        assert b"P content" not in body and b"smuggled" not in body
    records = run.records(1)
    check_records(records, validate_record, count=1)
    assert records[0]["transactions"][0]["outcome"] == "rejected"
