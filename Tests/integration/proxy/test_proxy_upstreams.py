"""End-to-end: upstream verdicts and missing extensions, relayed by `smtpscope proxy`."""
from proxy_support import RawClient, check_records, delivered, recorded, recorded_contents, swaks

CONTENT = b"Subject: upstream verdicts\r\n\r\nbody line\r\n.starts with a dot\r\n"


def stuffed(message):
    return b"\r\n".join(b"." + line if line.startswith(b".") else line for line in message.split(b"\r\n"))


def greet(client):
    code, _ = client.reply()
    assert code == 220
    code, lines = client.command("EHLO raw.client.test\r\n")
    assert code == 250
    return [line[4:].upper() for line in lines[1:]]


def test_rejected_recipient_is_relayed_and_the_rest_delivered(proxy, upstreams, validate_record):
    host, port, record_path = upstreams.aiosmtpd("--reject-rcpt", "nobody@upstream.test")
    run = proxy((host, port))
    client = RawClient(run.host, run.port)
    greet(client)
    assert client.command("MAIL FROM:<a@client.test>\r\n")[0] == 250
    code, lines = client.command("RCPT TO:<nobody@upstream.test>\r\n")
    assert code == 550 and "5.1.1" in lines[0]
    assert client.command("RCPT TO:<b@upstream.test>\r\n")[0] == 250
    assert client.command("DATA\r\n")[0] == 354
    assert client.command(stuffed(CONTENT) + b".\r\n")[0] == 250
    assert client.command("QUIT\r\n")[0] == 221
    client.close()
    assert [entry["rcpt_tos"] for entry in recorded(record_path)] == [["b@upstream.test"]]
    records = run.records(1)
    check_records(records, validate_record, count=1)
    [transaction] = records[0]["transactions"]
    assert [(r["address"], r["reply"]["code"], r["reply"]["enhanced"]) for r in transaction["rcpt_to"]] == [
        ("nobody@upstream.test", 550, "5.1.1"), ("b@upstream.test", 250, "2.1.5")]
    assert transaction["outcome"] == "delivered"
    assert records[0]["outcome"] == "completed"


def test_every_recipient_tempfailed_then_data_gets_554_from_the_proxy(proxy, upstreams, validate_record):
    host, port, record_path = upstreams.aiosmtpd("--tempfail-rcpt", "grey@upstream.test")
    run = proxy((host, port))
    client = RawClient(run.host, run.port)
    greet(client)
    assert client.command("MAIL FROM:<a@client.test>\r\n")[0] == 250
    code, lines = client.command("RCPT TO:<grey@upstream.test>\r\n")
    assert code == 450 and "4.2.0" in lines[0]
    code, lines = client.command("DATA\r\n")
    assert code == 554 and "5.5.1" in lines[0]
    assert client.command("QUIT\r\n")[0] == 221
    client.close()
    assert recorded(record_path) == []
    records = run.records(1)
    check_records(records, validate_record, count=1)
    [transaction] = records[0]["transactions"]
    assert transaction["outcome"] == "tempfailed"
    # The 4xx at RCPT decided the transaction; the proxy's own 554 to DATA may also count as a 5xx.
    assert records[0]["outcome"] in ("tempfail", "rejected")


def test_rejection_after_end_of_data_reaches_the_client(proxy, upstreams, validate_record):
    host, port, record_path = upstreams.aiosmtpd("--reject-data")
    run = proxy((host, port))
    completed = swaks(run.host, run.port, "--from", "a@client.test", "--to", "b@upstream.test", expect_success=False)
    assert completed.returncode != 0
    assert "554 5.7.1" in completed.stdout
    records = run.records(1)
    check_records(records, validate_record, count=1)
    [transaction] = records[0]["transactions"]
    assert transaction["data"]["reply"]["code"] == 554
    assert transaction["data"]["reply"]["enhanced"] == "5.7.1"
    assert transaction["outcome"] == "rejected"
    assert records[0]["outcome"] == "rejected"


def test_tempfail_after_end_of_data_reaches_the_client(proxy, upstreams, validate_record):
    host, port, _ = upstreams.aiosmtpd("--tempfail-data")
    run = proxy((host, port))
    completed = swaks(run.host, run.port, "--from", "a@client.test", "--to", "b@upstream.test", expect_success=False)
    assert "451 4.3.0" in completed.stdout
    records = run.records(1)
    check_records(records, validate_record, count=1)
    assert records[0]["transactions"][0]["outcome"] == "tempfailed"
    assert records[0]["outcome"] == "tempfail"


def pipelined_transaction(client):
    client.send(b"MAIL FROM:<a@client.test>\r\nRCPT TO:<b@upstream.test>\r\nRCPT TO:<c@upstream.test>\r\nDATA\r\n")
    codes = [client.reply()[0] for _ in range(4)]
    assert codes == [250, 250, 250, 354]
    client.send(stuffed(CONTENT) + b".\r\nQUIT\r\n")
    assert client.reply()[0] == 250
    assert client.reply()[0] == 221


def test_pipelined_client_in_front_of_an_upstream_without_pipelining(proxy, upstreams, validate_record):
    host, port, record_path = upstreams.aiosmtpd()
    run = proxy((host, port))
    client = RawClient(run.host, run.port)
    greet(client)
    pipelined_transaction(client)
    client.close()
    assert recorded_contents(record_path) == [CONTENT]
    records = run.records(1)
    check_records(records, validate_record, count=1)
    assert len(delivered(records[0])) == 1


def test_pipelined_client_in_front_of_an_upstream_with_pipelining(proxy, upstreams, validate_record):
    host, port, record_path = upstreams.aiosmtpd("--pipelining")
    run = proxy((host, port))
    client = RawClient(run.host, run.port)
    assert "PIPELINING" in greet(client)
    pipelined_transaction(client)
    client.close()
    assert recorded_contents(record_path) == [CONTENT]
    records = run.records(1)
    check_records(records, validate_record, count=1)
    assert "pipelining_not_advertised" not in [a["kind"] for a in records[0].get("anomalies") or []]


def test_bdat_from_the_client_becomes_data_upstream(proxy, upstreams, validate_record):
    host, port, record_path = upstreams.aiosmtpd()
    run = proxy((host, port))
    client = RawClient(run.host, run.port)
    assert "CHUNKING" in greet(client), "the proxy offers CHUNKING even where the upstream lacks it: BDAT goes as DATA"
    assert client.command("MAIL FROM:<a@client.test>\r\n")[0] == 250
    assert client.command("RCPT TO:<b@upstream.test>\r\n")[0] == 250
    first, second = CONTENT[:20], CONTENT[20:]
    assert client.command(b"BDAT %d\r\n" % len(first) + first)[0] == 250
    code, lines = client.command(b"BDAT %d LAST\r\n" % len(second) + second)
    assert code == 250, lines
    assert client.command("QUIT\r\n")[0] == 221
    client.close()
    # aiosmtpd stores the unstuffed content: the proxy dot-stuffed the line starting with ".".
    assert recorded_contents(record_path) == [CONTENT]
    records = run.records(1)
    check_records(records, validate_record, count=1)
    [transaction] = records[0]["transactions"]
    assert transaction["data"]["command"] == "BDAT"
    assert transaction["data"]["chunks"] == 2
    assert transaction["data"]["size"] == len(CONTENT)
    assert transaction["outcome"] == "delivered"
