"""End-to-end: real SMTP clients through `smtpscope proxy` to real upstreams."""
import shutil
import smtplib
import subprocess

import pytest

from proxy_support import (COMMAND_TIMEOUT, as_sink_dump, check_records, delivered, recorded, recorded_contents,
                            secret_forms, sink_dumps, swaks)

MESSAGE = (b"From: Alice <a@client.test>\r\nTo: b@upstream.test\r\nSubject: proxy test\r\n"
           b"Message-ID: <e2e-1@client.test>\r\n\r\nfirst line\r\n.leading dot\r\n..two dots\r\n.\tdot tab\r\n"
           + b"x" * 990 + b"\r\nlast line\r\n")


def write_message(tmp_path, message=MESSAGE):
    path = tmp_path / "message.eml"
    path.write_bytes(message)
    return path


def write_wire(tmp_path, message=MESSAGE):
    """The DATA content as swaks --no-data-fixup sends it: dot-stuffed, ending in "." (swaks adds the CRLF)."""
    path = tmp_path / "message.wire"
    path.write_bytes(b"\r\n".join(b"." + line if line.startswith(b".") else line for line in message.split(b"\r\n"))
                     + b".")
    return path


def test_swaks_plain_arrives_byte_identical_at_smtp_sink(proxy, upstreams, validate_record, tmp_path):
    host, port, dump = upstreams.smtp_sink()
    run = proxy((host, port))
    # The client's bytes are known exactly: swaks sends the file as it is.
    swaks(run.host, run.port, "--from", "a@client.test", "--to", "b@upstream.test",
          "--data", f"@{write_wire(tmp_path)}", "--no-data-fixup")
    assert sink_dumps(dump, wait_for=1) == [as_sink_dump(MESSAGE)]
    records = run.records(1)
    check_records(records, validate_record, count=1)
    record = records[0]
    assert record["server"]["port"] == run.port
    assert record["upstream"]["port"] == port
    assert record["helo"] == {"verb": "EHLO", "name": "client.test"}
    [transaction] = record["transactions"]
    assert transaction["mail_from"]["address"] == "a@client.test"
    assert [r["address"] for r in transaction["rcpt_to"]] == ["b@upstream.test"]
    assert transaction["data"]["command"] == "DATA"
    assert transaction["data"]["reply"]["code"] == 250
    assert transaction["outcome"] == "delivered"
    assert transaction["message"]["subject"] == "proxy test"
    assert record["outcome"] == "completed"
    assert record["close"]["reason"] == "QUIT"


def test_swaks_pipelined_session_is_delivered(proxy, upstreams, validate_record, tmp_path):
    host, port, dump = upstreams.smtp_sink()
    run = proxy((host, port))
    completed = swaks(run.host, run.port, "--pipeline", "--from", "a@client.test",
                      "--to", "b@upstream.test,c@upstream.test", "--data", f"@{write_wire(tmp_path)}", "--no-data-fixup")
    assert "PIPELINING" in completed.stdout
    assert sink_dumps(dump, wait_for=1) == [as_sink_dump(MESSAGE)]
    records = run.records(1)
    check_records(records, validate_record, count=1)
    [transaction] = records[0]["transactions"]
    assert [r["reply"]["code"] for r in transaction["rcpt_to"]] == [250, 250]
    assert transaction["outcome"] == "delivered"


@pytest.mark.parametrize("certificate", ["auto", "openssl"])
def test_swaks_starttls_terminated_by_the_proxy(proxy, upstreams, validate_record, tmp_path, tls_cert, certificate):
    host, port, dump = upstreams.smtp_sink()
    tls_args = ["--tls-cert", "auto"] if certificate == "auto" else ["--tls-cert", tls_cert[0], "--tls-key", tls_cert[1]]
    run = proxy((host, port), *tls_args, "--client-tls", "offer")
    completed = swaks(run.host, run.port, "--tls", "--from", "a@client.test", "--to", "b@upstream.test",
                      "--data", f"@{write_wire(tmp_path)}", "--no-data-fixup")
    assert "TLS started" in completed.stdout
    assert sink_dumps(dump, wait_for=1) == [as_sink_dump(MESSAGE)]
    records = run.records(1)
    check_records(records, validate_record, count=1)
    record = records[0]
    assert record["tls"]["mode"] == "starttls"
    assert record["tls"]["established"] is True
    assert delivered(record)
    assert record["outcome"] == "completed"


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_is_relayed_and_never_written(proxy, upstreams, validate_record, tmp_path, mechanism):
    user, password = "alice", "S3cret-Pa55-proxy"
    host, port, record_path = upstreams.aiosmtpd("--auth-user", user, "--auth-password", password)
    run = proxy((host, port))
    completed = swaks(run.host, run.port, "--auth", mechanism, "--auth-user", user, "--auth-password", password,
                      "--from", "alice@client.test", "--to", "b@upstream.test", "--data", f"@{write_wire(tmp_path)}",
                      "--no-data-fixup")
    assert "<-  235" in completed.stdout
    assert [entry["auth"] for entry in recorded(record_path)] == [True]
    assert recorded_contents(record_path) == [MESSAGE]
    records = run.records(1)
    check_records(records, validate_record, count=1, secrets=secret_forms(user, password))
    record = records[0]
    assert record["auth"]["mechanism"] == mechanism
    assert record["auth"]["user"] == user
    assert record["auth"]["result"] == "success"
    run.stop()
    output = run.output()
    for secret in secret_forms(user, password):
        assert secret not in output, "an AUTH secret appears in the proxy's output"
    for path in run.transcripts.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            for secret in secret_forms(user, password):
                assert secret not in text, f"an AUTH secret appears in {path}"


def test_curl_with_required_starttls(proxy, upstreams, validate_record, tmp_path):
    if shutil.which("curl") is None:
        pytest.skip("curl not installed; run tools/setup")
    host, port, record_path = upstreams.aiosmtpd()
    run = proxy((host, port), "--tls-cert", "auto")
    completed = subprocess.run(
        ["curl", "-sS", f"smtp://{run.host}:{run.port}", "--ssl-reqd", "-k", "--mail-from", "a@client.test",
         "--mail-rcpt", "b@upstream.test", "-T", str(write_message(tmp_path)), "--max-time", "30"],
        capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    assert completed.returncode == 0, completed.stderr
    assert recorded_contents(record_path) == [MESSAGE]
    records = run.records(1)
    check_records(records, validate_record, count=1)
    assert records[0]["tls"]["established"] is True
    assert len(delivered(records[0])) == 1


def test_smtplib_three_messages_on_one_connection_with_rset(proxy, upstreams, validate_record):
    host, port, record_path = upstreams.aiosmtpd()
    run = proxy((host, port))
    messages = [MESSAGE.replace(b"proxy test", f"message {n}".encode()) for n in range(3)]
    with smtplib.SMTP(run.host, run.port, local_hostname="smtplib.test", timeout=30) as client:
        client.ehlo()
        for number, message in enumerate(messages):
            refused = client.sendmail(f"s{number}@client.test", [f"r{number}@upstream.test"], message)
            assert refused == {}
            assert client.rset()[0] == 250
    assert recorded_contents(record_path) == messages
    assert [entry["mail_from"] for entry in recorded(record_path)] == ["s0@client.test", "s1@client.test", "s2@client.test"]
    records = run.records(1)
    check_records(records, validate_record, count=1)
    transactions = delivered(records[0])
    assert [t["mail_from"]["address"] for t in transactions] == ["s0@client.test", "s1@client.test", "s2@client.test"]
    assert [t["message"]["subject"] for t in transactions] == ["message 0", "message 1", "message 2"]
    assert records[0]["outcome"] == "completed"


def test_smtp_source_twenty_parallel_sessions(proxy, upstreams, validate_record):
    if shutil.which("smtp-source") is None:
        pytest.skip("smtp-source not installed (Postfix); run tools/setup")
    host, port, dump = upstreams.smtp_sink()
    run = proxy((host, port))
    completed = subprocess.run(
        ["smtp-source", "-s", "20", "-m", "100", "-l", "2000", "-f", "load@client.test", "-t", "sink@upstream.test",
         f"{run.host}:{run.port}"], capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert len(sink_dumps(dump, wait_for=100)) == 100
    records = run.records(100)
    check_records(records, validate_record, count=100)
    assert all(len(delivered(record)) == 1 for record in records)
    assert all(record["outcome"] == "completed" for record in records)
    assert len({record["session_id"] for record in records}) == 100
