"""`--client-tls passthrough`: the client's STARTTLS goes to the upstream, and TLS runs end to end
between the client and the upstream, with the proxy relaying octets blind.

The upstream is aiosmtpd offering STARTTLS with its own certificate; the proxy has none at all. The
clients (Python smtplib, swaks, curl) verify the certificate they get against the upstream's, so a
session that passes proves the TLS was the upstream's and not terminated by the proxy.
"""
import base64
import shutil
import smtplib
import socket
import ssl
import subprocess

import pytest

from proxy_support import COMMAND_TIMEOUT, RawClient, recorded, swaks

MESSAGE = (b"From: a@example.com\r\nTo: b@example.org\r\nSubject: passthrough\r\n"
           b"Message-ID: <passthrough@example.com>\r\n\r\nend to end\r\n")


@pytest.fixture
def tls_upstream(upstreams, tls_cert):
    cert, key = tls_cert
    return upstreams.aiosmtpd("--pipelining", "--tls-cert", cert, "--tls-key", key)


def verifying_context(tls_cert, maximum=None):
    context = ssl.create_default_context(cafile=str(tls_cert[0]))
    if maximum is not None:
        context.maximum_version = maximum
    return context


def send_over_passthrough(port, tls_cert, maximum=None, message=MESSAGE):
    """smtplib to `localhost` (SNI and the name checked): returns what the client saw of TLS."""
    with smtplib.SMTP("localhost", port, local_hostname="localhost", timeout=30) as client:
        client.ehlo("passthrough.test")
        assert client.has_extn("starttls"), "STARTTLS is offered because the upstream offers it"
        client.starttls(context=verifying_context(tls_cert, maximum))
        seen = {"version": client.sock.version(), "cipher": client.sock.cipher()[0],
                "certificate": client.sock.getpeercert(binary_form=True)}
        client.ehlo("passthrough.test")
        client.sendmail("a@example.com", ["b@example.org"], message)
    return seen


def upstream_der(tls_cert):
    return ssl.PEM_cert_to_DER_cert(open(tls_cert[0]).read())


def test_smtplib_gets_the_upstreams_certificate_and_the_message_arrives(proxy, tls_upstream, validate_record, tls_cert):
    host, port, record_path = tls_upstream
    run = proxy((host, port), "--client-tls", "passthrough")
    seen = send_over_passthrough(run.port, tls_cert)
    assert seen["certificate"] == upstream_der(tls_cert), "the client's TLS peer is the upstream, end to end"

    [delivered] = recorded(record_path)
    assert base64.b64decode(delivered["content"]) == MESSAGE
    assert delivered["tls"]["version"] == seen["version"]
    assert delivered["tls"]["sni"] == "localhost"

    [record] = run.records(1)
    validate_record(record)
    tls = record["tls"]
    assert tls["mode"] == "passthrough"
    assert tls["established"] is True
    assert tls["version"] == seen["version"] == "TLSv1.3"
    assert tls["cipher"] == seen["cipher"], "TLS 1.3 suite names are the IANA names"
    assert tls["sni"] == "localhost"
    assert record["outcome"] == "completed"
    assert record["helo"]["name"] == "passthrough.test"
    assert record["transactions"] == [], "nothing inside the TLS can be read"
    texts = [event["text"] for event in record["events"]]
    assert "STARTTLS" in texts
    assert any(text.startswith("[TLS passthrough: octets relayed blind") for text in texts)
    relayed = [event for event in record["events"] if event["text"].startswith("[TLS passthrough:") and "octets relayed]" in event["text"]]
    assert {(event["from"], event["to"]) for event in relayed} == {("client", "server"), ("server", "client")}
    assert record["bytes"]["client"] > len(MESSAGE) and record["bytes"]["server"] > 1000, "the certificate came through"


def test_tls12_is_observed_too(proxy, tls_upstream, validate_record, tls_cert):
    host, port, _ = tls_upstream
    run = proxy((host, port), "--client-tls", "passthrough")
    seen = send_over_passthrough(run.port, tls_cert, maximum=ssl.TLSVersion.TLSv1_2)
    [record] = run.records(1)
    validate_record(record)
    assert seen["version"] == record["tls"]["version"] == "TLSv1.2"
    # OpenSSL names TLS 1.2 suites its own way (ECDHE-RSA-AES256-GCM-SHA384); the record has IANA's.
    assert record["tls"]["cipher"].startswith("TLS_ECDHE_RSA_WITH_")
    assert record["tls"]["established"] is True


def test_a_large_message_streams_through(proxy, tls_upstream, tls_cert):
    host, port, record_path = tls_upstream
    run = proxy((host, port), "--client-tls", "passthrough")
    body = b"".join(b"line %07d of a large message through end-to-end TLS\r\n" % n for n in range(100_000))
    message = MESSAGE + body
    send_over_passthrough(run.port, tls_cert, message=message)
    [delivered] = recorded(record_path)
    assert base64.b64decode(delivered["content"]) == message
    [record] = run.records(1)
    assert record["bytes"]["client"] > len(message)


def test_swaks_tls_through_passthrough(proxy, tls_upstream, validate_record, tls_cert):
    host, port, record_path = tls_upstream
    run = proxy((host, port), "--client-tls", "passthrough")
    completed = swaks("127.0.0.1", run.port, "--tls", "--tls-verify", "--tls-ca-path", tls_cert[0],
                      "--tls-sni", "localhost", "--to", "b@example.org", "--from", "a@example.com")
    assert "TLS started" in completed.stdout
    assert len(recorded(record_path)) == 1
    [record] = run.records(1)
    validate_record(record)
    assert record["tls"]["mode"] == "passthrough" and record["tls"]["established"] is True
    assert record["tls"]["sni"] == "localhost"


def test_curl_ssl_reqd_verifies_the_upstreams_certificate(proxy, tls_upstream, tls_cert, tmp_path):
    if shutil.which("curl") is None:
        pytest.skip("curl not installed; run tools/setup")
    host, port, record_path = tls_upstream
    run = proxy((host, port), "--client-tls", "passthrough")
    mail = tmp_path / "mail.eml"
    mail.write_bytes(MESSAGE)
    completed = subprocess.run(
        ["curl", "--silent", "--show-error", "--ssl-reqd", "--cacert", str(tls_cert[0]),
         f"smtp://localhost:{run.port}", "--mail-from", "a@example.com", "--mail-rcpt", "b@example.org",
         "--upload-file", str(mail)],
        capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    assert completed.returncode == 0, completed.stderr
    [delivered] = recorded(record_path)
    assert base64.b64decode(delivered["content"]) == MESSAGE
    assert delivered["tls"] is not None
    [record] = run.records(1)
    assert record["tls"]["mode"] == "passthrough"


def test_without_upstream_starttls_none_is_offered_and_mail_is_inspected(proxy, upstreams, validate_record):
    host, port, record_path = upstreams.aiosmtpd("--pipelining")
    run = proxy((host, port), "--client-tls", "passthrough")
    with smtplib.SMTP("127.0.0.1", run.port, local_hostname="localhost", timeout=30) as client:
        client.ehlo("plain.test")
        assert not client.has_extn("starttls")
        code, text = client.docmd("STARTTLS")
        assert (code, text) == (454, b"4.7.0 TLS not available")
        client.sendmail("a@example.com", ["b@example.org"], MESSAGE)
    assert len(recorded(record_path)) == 1
    [record] = run.records(1)
    validate_record(record)
    # The same reading as a capture's: the client asked for TLS and did not get it.
    assert record["tls"]["mode"] == "starttls" and record["tls"]["established"] is False
    assert record["tls"]["failure"] == "STARTTLS refused: 454 TLS not available"
    assert record["transactions"][0]["outcome"] == "delivered", "the mail went on in plaintext, inspected"


def greeted_raw_client(port):
    """A raw client past the greeting and EHLO."""
    client = RawClient("127.0.0.1", port)
    assert client.reply()[0] == 220
    assert client.command(b"EHLO raw.test\r\n")[0] == 250
    return client


def test_plaintext_after_the_220_fails_the_upstreams_handshake(proxy, tls_upstream, validate_record):
    """A client that ignores the 220 and talks plaintext reaches the upstream's TLS, not its SMTP."""
    host, port, record_path = tls_upstream
    run = proxy((host, port), "--client-tls", "passthrough")
    client = greeted_raw_client(run.port)
    try:
        assert client.command(b"STARTTLS\r\n")[0] == 220
        client.send(b"MAIL FROM:<plain@example.com>\r\n")
        client.sock.settimeout(30)
        while client.sock.recv(4096):
            pass
    except (ConnectionError, socket.timeout):
        pass
    finally:
        client.close()
    [record] = run.records(1)
    validate_record(record)
    assert record["tls"]["mode"] == "passthrough"
    assert record["tls"]["established"] is False
    assert record["outcome"] == "tls_failed"
    assert recorded(record_path) == []


def test_pipelined_plaintext_after_starttls_is_discarded(proxy, tls_upstream, validate_record):
    host, port, record_path = tls_upstream
    run = proxy((host, port), "--client-tls", "passthrough")
    client = greeted_raw_client(run.port)
    try:
        client.send(b"STARTTLS\r\nMAIL FROM:<injected@example.com>\r\n")
        assert client.reply()[0] == 220
    finally:
        client.close()
    [record] = run.records(1)
    validate_record(record)
    assert "plaintext_after_starttls" in [anomaly["kind"] for anomaly in record["anomalies"]]
    assert not any("injected" in event["text"] for event in record["events"] if event["to"] == "server")


@pytest.mark.parametrize("upstream_tls", ["require", "verify", "opportunistic"])
def test_passthrough_excludes_proxy_made_upstream_tls(proxy_binary, upstream_tls):
    completed = subprocess.run(
        [str(proxy_binary), "proxy", "--client-tls", "passthrough", "--upstream-tls", upstream_tls],
        capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    assert completed.returncode == 2, completed
    assert "passthrough" in completed.stderr


def test_an_idle_passthrough_session_is_closed_after_the_idle_timeout(proxy, tls_upstream, validate_record, tls_cert):
    host, port, _ = tls_upstream
    run = proxy((host, port), "--client-tls", "passthrough", "--idle-timeout", "2")
    client = smtplib.SMTP("localhost", run.port, local_hostname="localhost", timeout=60)
    try:
        client.ehlo("idle.test")
        client.starttls(context=verifying_context(tls_cert))
        client.ehlo("idle.test")
        # Silent now: the proxy, not the upstream (whose own timeout is 5 minutes), ends it.
        client.sock.settimeout(60)
        assert client.sock.recv(4096) == b"", "the proxy closed the connection"
    finally:
        client.close()
    [record] = run.records(1)
    validate_record(record)
    assert record["close"] == {"by": "proxy", "reason": "timeout"}
    assert record["tls"]["mode"] == "passthrough" and record["tls"]["established"] is True
