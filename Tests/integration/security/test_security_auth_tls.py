"""Hostile-input cases 20-23 (README, Security) through the real proxy: AUTH secrets and limits, STARTTLS
command injection (CVE-2011-0411), state after TLS, and an upstream that strips or refuses STARTTLS."""
import base64
import json
import ssl

import pytest

from proxy_support import RawClient, check_records, secret_forms
from security_support import NO_RULES, anomaly_kinds, upstream_lines

USER, PASSWORD = "alice@client.test", "s3cret-Pa55word"
TLS = ("--tls-cert", "auto")


def b64(text):
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def ehlo(client, name="raw.client.test"):
    code, lines = client.command(f"EHLO {name}\r\n")
    assert code == 250, lines
    return lines


def starttls(client):
    """The TLS handshake on the client's socket, after the proxy's 220."""
    assert client.buffer == b"", "nothing may be left over from plaintext"
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    client.sock = context.wrap_socket(client.sock, server_hostname="localhost")


# --------------------------------------------------------------------------------------------------
# Row 20: AUTH


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_row20_auth_records_mechanism_and_user_never_the_blobs(proxy, upstreams, validate_record, mechanism):
    host, port, _ = upstreams.aiosmtpd("--auth-user", USER, "--auth-password", PASSWORD)
    run = proxy((host, port), *NO_RULES)
    client = RawClient(run.host, run.port)
    try:
        assert client.reply()[0] == 220
        ehlo(client)
        if mechanism == "PLAIN":
            code, lines = client.command(f"AUTH PLAIN {b64(chr(0) + USER + chr(0) + PASSWORD)}\r\n")
        else:
            assert client.command("AUTH LOGIN\r\n")[0] == 334
            assert client.command(f"{b64(USER)}\r\n")[0] == 334
            code, lines = client.command(f"{b64(PASSWORD)}\r\n")
        assert code == 235, lines
        assert client.command("QUIT\r\n")[0] == 221
    finally:
        client.close()
    [record] = run.records(1)
    check_records([record], validate_record, secrets=secret_forms(USER, PASSWORD) + [b64(PASSWORD)])
    text = json.dumps(record)
    assert mechanism in text and USER in text
    assert PASSWORD not in run.output()


def test_row20_xoauth2_token_is_never_written(proxy, upstreams, validate_record):
    host, port, _ = upstreams.aiosmtpd("--auth-user", USER, "--auth-password", PASSWORD)
    run = proxy((host, port), *NO_RULES)
    token = b64(f"user={USER}\x01auth=Bearer ya29.SECRET-TOKEN-VALUE\x01\x01")
    client = RawClient(run.host, run.port)
    try:
        assert client.reply()[0] == 220
        ehlo(client)
        code, lines = client.command(f"AUTH XOAUTH2 {token}\r\n")
        assert 500 <= code < 600, lines   # not offered by the upstream
        assert client.command("NOOP\r\n")[0] == 250
    finally:
        client.close()
    [record] = run.records(1)
    check_records([record], validate_record, secrets=[token, "SECRET-TOKEN-VALUE"])
    assert "SECRET-TOKEN-VALUE" not in run.output()


def test_row20_a_cancelled_exchange_gets_501_5_7_0(proxy, upstreams, validate_record):
    host, port, _ = upstreams.aiosmtpd("--auth-user", USER, "--auth-password", PASSWORD)
    run = proxy((host, port), *NO_RULES)
    client = RawClient(run.host, run.port)
    try:
        assert client.reply()[0] == 220
        ehlo(client)
        assert client.command("AUTH LOGIN\r\n")[0] == 334
        code, lines = client.command("*\r\n")
        assert code == 501 and lines[0].startswith("501 5.7.0"), lines
        # In sync: a real exchange works afterwards.
        code, lines = client.command(f"AUTH PLAIN {b64(chr(0) + USER + chr(0) + PASSWORD)}\r\n")
        assert code == 235, lines
    finally:
        client.close()
    [record] = run.records(1)
    check_records([record], validate_record, secrets=secret_forms(USER, PASSWORD))


def test_row20_a_response_over_12288_octets_gets_500_5_5_6(proxy, upstreams, validate_record):
    host, port, _ = upstreams.aiosmtpd("--auth-user", USER, "--auth-password", PASSWORD)
    run = proxy((host, port), *NO_RULES)
    client = RawClient(run.host, run.port)
    blob = "QUJD" * 3072 + "Q"   # 12289 octets
    try:
        assert client.reply()[0] == 220
        ehlo(client)
        assert client.command("AUTH LOGIN\r\n")[0] == 334
        code, lines = client.command(f"{blob}\r\n")
        assert code == 500 and lines[0].startswith("500 5.5.6"), lines
        assert client.command("NOOP\r\n")[0] == 250
    finally:
        client.close()
    [record] = run.records(1)
    check_records([record], validate_record, secrets=[blob[:64]])


# --------------------------------------------------------------------------------------------------
# Row 21: plaintext pipelined after STARTTLS


@pytest.mark.parametrize("pipelined", [b"RSET\r\n", b"EHLO injected.test\r\n"], ids=["RSET", "EHLO"])
def test_row21_plaintext_pipelined_after_starttls_is_discarded_and_recorded(proxy, upstreams, validate_record,
                                                                            pipelined):
    host, port, _ = upstreams.aiosmtpd()
    run = proxy((host, port), *TLS, *NO_RULES)
    client = RawClient(run.host, run.port)
    try:
        assert client.reply()[0] == 220
        assert any("STARTTLS" in line for line in ehlo(client))
        code, lines = client.command(b"STARTTLS\r\n" + pipelined)
        assert code == 220, lines
        starttls(client)
        # The first reply inside TLS answers NOOP: the pipelined command got none.
        code, lines = client.command("NOOP\r\n")
        assert code == 250 and len(lines) == 1, lines
        lines = ehlo(client)
        assert not any("STARTTLS" in line for line in lines)
        assert client.command("QUIT\r\n")[0] == 221
    finally:
        client.close()
    [record] = run.records(1)
    check_records([record], validate_record)
    assert "plaintext_after_starttls" in anomaly_kinds(record)
    assert "EHLO injected.test" not in upstream_lines(record)


# --------------------------------------------------------------------------------------------------
# Row 22: state after TLS


def test_row22_mail_after_tls_needs_a_new_ehlo_and_starttls_inside_tls_is_refused(proxy, upstreams,
                                                                                  validate_record):
    host, port, _ = upstreams.aiosmtpd()
    run = proxy((host, port), *TLS, *NO_RULES)
    client = RawClient(run.host, run.port)
    try:
        assert client.reply()[0] == 220
        ehlo(client)
        assert client.command("STARTTLS\r\n")[0] == 220
        starttls(client)
        code, lines = client.command("MAIL FROM:<a@client.test>\r\n")
        assert code == 503, lines
        ehlo(client)
        code, lines = client.command("STARTTLS\r\n")
        assert code in (503, 554), lines
        if code == 554:
            assert lines[0].startswith("554 5.5.1"), lines
        assert client.command("MAIL FROM:<a@client.test>\r\n")[0] == 250
        assert client.command("QUIT\r\n")[0] == 221
    finally:
        client.close()
    [record] = run.records(1)
    check_records([record], validate_record)


# --------------------------------------------------------------------------------------------------
# Row 23: --upstream-tls require against an upstream without TLS


@pytest.mark.parametrize("flags", [
    (),
    ("--offer-starttls", "--starttls-reply", "454 4.7.0 TLS not available due to local problem"),
    ("--offer-starttls", "--starttls-reply", "502 5.5.1 Error: command not implemented"),
], ids=["not-offered", "454", "502"])
def test_row23_required_upstream_tls_that_fails_gets_451_4_7_5_and_sends_nothing_in_plaintext(
        proxy, hostile, validate_record, flags):
    host, port, record_path = hostile.start(*flags)
    run = proxy((host, port), "--upstream-tls", "require", *NO_RULES)
    client = RawClient(run.host, run.port)
    try:
        assert client.reply()[0] == 220
        ehlo(client)
        code, lines = client.command("MAIL FROM:<a@client.test>\r\n")
        assert code == 451 and lines[0].startswith("451 4.7.5"), lines
        assert client.command("QUIT\r\n")[0] == 221
    finally:
        client.close()
    received = [json.loads(line)["line"] for line in record_path.read_text().splitlines()]
    assert not [line for line in received if line.upper().startswith(("MAIL", "RCPT", "DATA", "AUTH"))], received
    [record] = run.records(1)
    check_records([record], validate_record)
    assert "starttls_stripped" in anomaly_kinds(record)
