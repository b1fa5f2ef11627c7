"""Real SMTP sessions on loopback, captured with tcpdump, read back by `smtpscope pcap`.

Each test starts its own peers (Postfix's smtp-sink, an aiosmtpd server, or a raw Python peer), drives
a real client (swaks, smtplib or a raw socket), captures the traffic, and checks the transcript fields
and the troubleshooting report. tshark is used as a cross-check for TLS facts only.
"""
import re
import smtplib
import socket
import struct
import subprocess
import time

import pytest

from integration_support import anomaly_kinds, b64, event_texts, only_session, swaks

SENDER = "alice@example.com"
GOOD = "bob@example.org"
BAD = "nobody@example.org"
GREY = "carol@example.org"
AUTH_USER = "alice"
AUTH_PASSWORD = "Sw0rdfish-Secret-91"


def transcripts(smtpscope, validate_record, capture_path, port):
    """Runs `smtpscope pcap` on the capture, validates every line, returns the session to `port`."""
    records = smtpscope.records(capture_path, "--ports", str(port))
    for record in records:
        validate_record(record)
        assert record["schema"] == "smtpscope.session/1"
        assert record["source"] == "pcap"
    return only_session(records, port)


def report(smtpscope, capture_path, port):
    result = smtpscope.pcap(capture_path, "--ports", str(port), "--report")
    assert result.stdout.strip(), "the report is empty"
    return result.stdout


def assert_reply(reply, code, enhanced=None, text=None):
    assert reply is not None, f"expected a {code} reply, found none"
    assert reply["code"] == code, reply
    if enhanced is not None:
        assert reply["enhanced"] == enhanced, reply
    if text is not None:
        assert text in reply["text"], reply


def assert_endpoints(record, host, port):
    assert record["server"] == {"ip": host, "port": port}
    assert record["client"]["ip"] == host
    assert isinstance(record["client"]["port"], int) and record["client"]["port"] != port


def assert_clean_quit(record):
    assert record["outcome"] == "completed", record["outcome"]
    assert record["close"]["by"] == "client"
    assert record["close"]["reason"] == "QUIT"


def assert_bytes(record):
    assert record["bytes"]["client"] > 0
    assert record["bytes"]["server"] > 0


def client_payload(capture_path, port):
    """Everything the client sent, as text (tshark reassembles nothing here; we just concatenate)."""
    output = subprocess.run(
        ["tshark", "-r", str(capture_path), "-Y", f"tcp.dstport == {port} && tcp.len > 0",
         "-T", "fields", "-e", "tcp.payload"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    return b"".join(bytes.fromhex(line.replace(":", "")) for line in output.split()).decode("latin-1")


# ------------------------------------------------------------------------------------------------
# Plain deliveries


def test_swaks_plain_delivery_to_smtp_sink(smtpscope, validate_record, peers, capture, tmp_path):
    host, port = peers.smtp_sink()
    attachment = tmp_path / "report.csv"
    attachment.write_text("col1,col2\n1,2\n")
    with capture(port) as path:
        swaks(host, port, "--from", SENDER, "--to", GOOD,
              "--header", "Subject: quarterly numbers",
              "--header", "Message-Id: <plain-1@client.test>",
              "--attach-type", "text/csv", "--attach", f"@{attachment}")

    record = transcripts(smtpscope, validate_record, path, port)
    assert_endpoints(record, host, port)
    assert record["greeting"]["code"] == 220
    assert record["helo"] == {"verb": "EHLO", "name": "client.test"}
    assert "PIPELINING" in record["extensions"]
    assert record["tls"]["mode"] == "none"
    assert record["auth"] is None
    assert len(record["transactions"]) == 1
    transaction = record["transactions"][0]
    assert transaction["mail_from"]["address"] == SENDER
    assert_reply(transaction["mail_from"]["reply"], 250)
    assert [r["address"] for r in transaction["rcpt_to"]] == [GOOD]
    assert_reply(transaction["rcpt_to"][0]["reply"], 250)
    assert transaction["data"]["command"] == "DATA"
    assert_reply(transaction["data"]["reply"], 250)
    message = transaction["message"]
    assert message["subject"] == "quarterly numbers"
    assert message["message_id"] == "<plain-1@client.test>"
    assert any(SENDER in sender for sender in message["from"])
    assert any(GOOD in rcpt for rcpt in message["to"])
    assert message["attachments"] == [{"filename": "report.csv", "content_type": "text/csv", "size": 14}]
    assert message["size"] == transaction["data"]["size"]
    assert re.fullmatch(r"[0-9a-f]{64}", message["sha256"])
    assert transaction["outcome"] == "delivered"
    assert_clean_quit(record)
    assert_bytes(record)
    assert anomaly_kinds(record) == []
    client_lines = event_texts(record, "client")
    assert client_lines[0] == "EHLO client.test"
    assert "QUIT" in client_lines


def test_swaks_pipelined_delivery(smtpscope, validate_record, peers, capture):
    host, port = peers.smtp_sink()
    with capture(port) as path:
        swaks(host, port, "--pipeline", "--from", SENDER, "--to", f"{GOOD},{GREY}",
              "--header", "Subject: pipelined")

    record = transcripts(smtpscope, validate_record, path, port)
    transaction = only_one(record["transactions"])
    assert transaction["mail_from"]["address"] == SENDER
    assert [r["address"] for r in transaction["rcpt_to"]] == [GOOD, GREY]
    assert all(r["reply"]["code"] == 250 for r in transaction["rcpt_to"])
    assert_reply(transaction["data"]["reply"], 250)
    assert transaction["message"]["subject"] == "pipelined"
    assert transaction["outcome"] == "delivered"
    assert_clean_quit(record)
    # smtp-sink advertises PIPELINING, so pipelining here is no anomaly.
    assert "pipelining_not_advertised" not in anomaly_kinds(record)


def test_smtplib_three_messages_with_rset_between(smtpscope, validate_record, peers, capture):
    host, port = peers.aiosmtpd()
    with capture(port) as path:
        with smtplib.SMTP(host, port, local_hostname="smtplib.test", timeout=20) as client:
            for number in (1, 2, 3):
                message = (f"From: {SENDER}\r\nTo: {GOOD}\r\nSubject: message {number}\r\n"
                           f"Message-ID: <m{number}@smtplib.test>\r\n\r\nbody {number}\r\n")
                client.sendmail(SENDER, [GOOD], message)
                if number < 3:
                    client.rset()

    record = transcripts(smtpscope, validate_record, path, port)
    assert record["helo"] == {"verb": "EHLO", "name": "smtplib.test"}
    assert [t["message"]["subject"] for t in record["transactions"]] == ["message 1", "message 2", "message 3"]
    assert [t["message"]["message_id"] for t in record["transactions"]] == [
        "<m1@smtplib.test>", "<m2@smtplib.test>", "<m3@smtplib.test>"]
    assert [t["outcome"] for t in record["transactions"]] == ["delivered"] * 3
    assert sum(1 for line in event_texts(record, "client") if line.upper() == "RSET") == 2
    assert_clean_quit(record)
    assert len(peers.recorded_messages()) == 3


def only_one(items):
    assert len(items) == 1, items
    return items[0]


# ------------------------------------------------------------------------------------------------
# Failures


def test_rejected_recipient_among_accepted_ones(smtpscope, validate_record, peers, capture):
    host, port = peers.aiosmtpd(reject_rcpt=[BAD])
    with capture(port) as path:
        swaks(host, port, "--from", SENDER, "--to", f"{GOOD},{BAD}", "--header", "Subject: partial")

    record = transcripts(smtpscope, validate_record, path, port)
    transaction = only_one(record["transactions"])
    recipients = {r["address"]: r["reply"] for r in transaction["rcpt_to"]}
    assert list(recipients) == [GOOD, BAD]
    assert_reply(recipients[GOOD], 250, "2.1.5")
    assert_reply(recipients[BAD], 550, "5.1.1", "User unknown")
    assert_reply(transaction["data"]["reply"], 250, "2.0.0")
    assert transaction["outcome"] == "delivered"
    # Rejected recipients do not matter when the message was delivered to the rest (README, "Transcript
    # schema", session outcome).
    assert record["outcome"] == "completed"

    text = report(smtpscope, path, port)
    assert "550" in text and "5.1.1" in text
    assert BAD in text
    assert "mailbox" in text.lower(), "the report should say what 5.1.1 means (bad destination mailbox)"

    human = smtpscope.pcap(path, "--ports", str(port), "--format", "text").stdout
    assert "550" in human and "5.1.1" in human and BAD in human and "User unknown" in human


def test_greylisting_tempfail(smtpscope, validate_record, peers, capture):
    host, port = peers.aiosmtpd(greylist=[GREY])
    with capture(port) as path:
        swaks(host, port, "--from", SENDER, "--to", GREY, expect_success=False)

    record = transcripts(smtpscope, validate_record, path, port)
    transaction = only_one(record["transactions"])
    assert_reply(transaction["rcpt_to"][0]["reply"], 450, "4.2.0", "Greylisted")
    assert transaction["data"] is None or transaction["data"]["reply"] is None
    assert transaction["outcome"] == "tempfailed"
    assert record["outcome"] == "tempfail"

    text = report(smtpscope, path, port)
    assert "450" in text and "4.2.0" in text
    assert "greylist" in text.lower()


def test_rejection_after_data(smtpscope, validate_record, peers, capture):
    host, port = peers.aiosmtpd(reject_data=True)
    with capture(port) as path:
        swaks(host, port, "--from", SENDER, "--to", GOOD, "--header", "Subject: spammy", expect_success=False)

    record = transcripts(smtpscope, validate_record, path, port)
    transaction = only_one(record["transactions"])
    assert_reply(transaction["rcpt_to"][0]["reply"], 250)
    assert_reply(transaction["data"]["reply"], 554, "5.7.1", "content policy")
    assert transaction["message"]["subject"] == "spammy"
    assert transaction["outcome"] == "rejected"
    assert record["outcome"] == "rejected"

    text = report(smtpscope, path, port)
    assert "554" in text and "5.7.1" in text
    assert "policy" in text.lower() or "security" in text.lower(), "the report should explain 5.7.1"


# ------------------------------------------------------------------------------------------------
# TLS and AUTH

TLS13_SUITES = {0x1301: "TLS_AES_128_GCM_SHA256", 0x1302: "TLS_AES_256_GCM_SHA384",
                0x1303: "TLS_CHACHA20_POLY1305_SHA256"}


def tshark_server_hello(path, port):
    fields = subprocess.run(
        ["tshark", "-r", str(path), "-d", f"tcp.port=={port},smtp", "-Y", "tls.handshake.type == 2",
         "-T", "fields", "-e", "tls.handshake.ciphersuite", "-e", "tls.handshake.extensions.supported_version"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout.split()
    return [int(value, 16) for value in fields]


def test_starttls_session(smtpscope, validate_record, peers, capture, tls_cert):
    host, port = peers.aiosmtpd(tls=tls_cert)
    with capture(port) as path:
        swaks(host, port, "--tls", "--tls-sni", "mx.example.test", "--from", SENDER, "--to", GOOD)

    record = transcripts(smtpscope, validate_record, path, port)
    tls = record["tls"]
    assert tls["mode"] == "starttls"
    assert tls["established"] is True
    assert tls["sni"] == "mx.example.test"
    assert tls["failure"] is None
    cipher, version = tshark_server_hello(path, port)[:2]
    assert version == 0x0304 and tls["version"] == "TLSv1.3"
    assert tls["cipher"] == TLS13_SUITES[cipher]
    assert "STARTTLS" in record["extensions"]
    # The EHLO after STARTTLS is encrypted: helo stays the one seen in clear text, and the mail
    # transaction is invisible to a capture.
    assert record["helo"]["name"] == "client.test"
    assert record["transactions"] == []
    assert record["outcome"] == "completed"
    assert "STARTTLS" in [line.upper() for line in event_texts(record, "client")]


def auth_secrets(path, port):
    """The AUTH payloads the client actually sent (every line between AUTH and the 235)."""
    sent = client_payload(path, port).split("\r\n")
    start = next(i for i, line in enumerate(sent) if line.upper().startswith("AUTH "))
    secrets = [part for part in sent[start].split(" ")[2:] if part]
    for line in sent[start + 1:]:
        if line.upper().startswith(("MAIL ", "QUIT", "EHLO", "RSET")):
            break
        if line:
            secrets.append(line)
    return secrets


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_user_is_recorded_and_secrets_never_appear(smtpscope, validate_record, peers, capture, mechanism):
    host, port = peers.aiosmtpd(auth=(AUTH_USER, AUTH_PASSWORD))
    with capture(port) as path:
        swaks(host, port, "--auth", mechanism, "--auth-user", AUTH_USER, "--auth-password", AUTH_PASSWORD,
              "--from", SENDER, "--to", GOOD)

    record = transcripts(smtpscope, validate_record, path, port)
    assert record["auth"] == {"mechanism": mechanism, "user": AUTH_USER, "result": "success", "code": 235}
    assert only_one(record["transactions"])["outcome"] == "delivered"
    assert record["outcome"] == "completed"

    secrets = auth_secrets(path, port)
    assert secrets, "the capture should hold the AUTH exchange"
    forbidden = set(secrets) | {AUTH_PASSWORD, b64(AUTH_PASSWORD), b64(f"\0{AUTH_USER}\0{AUTH_PASSWORD}"),
                                b64(f"{AUTH_USER}\0{AUTH_USER}\0{AUTH_PASSWORD}"),
                                b64("Username:"), b64("Password:")}
    outputs = {
        "jsonl": smtpscope.pcap(path, "--ports", str(port)),
        "text": smtpscope.pcap(path, "--ports", str(port), "--format", "text"),
        "report": smtpscope.pcap(path, "--ports", str(port), "--report"),
    }
    for name, result in outputs.items():
        for secret in forbidden:
            assert secret not in result.stdout, f"an AUTH secret appears in the {name} output"
            assert secret not in result.stderr, f"an AUTH secret appears on stderr ({name})"


# ------------------------------------------------------------------------------------------------
# Addresses, resets, BDAT, bare LF


def test_ipv6_session(smtpscope, validate_record, peers, capture):
    host, port = peers.smtp_sink(host="::1")
    with capture(port) as path:
        swaks(host, port, "--from", SENDER, "--to", GOOD, "--header", "Subject: over ipv6")

    record = transcripts(smtpscope, validate_record, path, port)
    assert_endpoints(record, "::1", port)
    transaction = only_one(record["transactions"])
    assert transaction["message"]["subject"] == "over ipv6"
    assert transaction["outcome"] == "delivered"
    assert_clean_quit(record)


class RawClient:
    """A line-at-a-time SMTP client for what swaks and smtplib refuse to send."""

    def __init__(self, host, port):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.create_connection((host, port), timeout=20) if family == socket.AF_INET \
            else socket.create_connection((host, port, 0, 0), timeout=20)
        self.stream = self.socket.makefile("rb")
        self.read_reply()

    def read_reply(self):
        lines = []
        while True:
            line = self.stream.readline()
            assert line, "the server closed the connection"
            lines.append(line.decode().rstrip("\r\n"))
            if line[3:4] != b"-":
                return int(lines[-1][:3]), lines

    def command(self, line):
        self.socket.sendall(line.encode() + b"\r\n")
        return self.read_reply()

    def send(self, data):
        self.socket.sendall(data)

    def reset(self):
        # SO_LINGER with a zero timeout turns close() into an RST.
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.stream.close()
        self.socket.close()

    def close(self):
        self.stream.close()
        self.socket.close()


def test_client_reset_mid_data(smtpscope, validate_record, peers, capture):
    host, port = peers.smtp_sink()
    with capture(port) as path:
        client = RawClient(host, port)
        client.command("EHLO raw.test")
        client.command(f"MAIL FROM:<{SENDER}>")
        client.command(f"RCPT TO:<{GOOD}>")
        assert client.command("DATA")[0] == 354
        client.send(b"Subject: cut short\r\n\r\nfirst line of a message that never ends\r\n")
        time.sleep(0.2)
        client.reset()
        time.sleep(0.2)

    record = transcripts(smtpscope, validate_record, path, port)
    transaction = only_one(record["transactions"])
    assert transaction["data"]["reply"] is None
    assert transaction["outcome"] == "aborted"
    assert record["outcome"] == "reset"
    assert record["close"] == {"by": "client", "reason": "RST"}


def test_bdat_session(smtpscope, validate_record, peers, capture):
    host, port = peers.bdat_server()
    first = b"From: alice@example.com\r\nTo: bob@example.org\r\nSubject: chunked\r\n"
    second = b"Message-ID: <bdat-1@raw.test>\r\n\r\nThe body, sent in a second chunk.\r\n"
    with capture(port) as path:
        client = RawClient(host, port)
        _, ehlo = client.command("EHLO raw.test")
        assert any("CHUNKING" in line for line in ehlo)
        client.command(f"MAIL FROM:<{SENDER}>")
        client.command(f"RCPT TO:<{GOOD}>")
        client.send(f"BDAT {len(first)}\r\n".encode() + first)
        assert client.read_reply()[0] == 250
        client.send(f"BDAT {len(second)} LAST\r\n".encode() + second)
        assert client.read_reply()[0] == 250
        client.command("QUIT")
        client.close()

    record = transcripts(smtpscope, validate_record, path, port)
    assert "CHUNKING" in record["extensions"]
    transaction = only_one(record["transactions"])
    data = transaction["data"]
    assert data["command"] == "BDAT"
    assert data["chunks"] == 2
    assert data["size"] == len(first) + len(second)
    assert_reply(data["reply"], 250, "2.0.0", "queued")
    assert transaction["message"]["subject"] == "chunked"
    assert transaction["message"]["message_id"] == "<bdat-1@raw.test>"
    assert transaction["outcome"] == "delivered"
    assert_clean_quit(record)


def test_bare_lf_in_data_is_an_anomaly(smtpscope, validate_record, peers, capture):
    host, port = peers.smtp_sink()
    with capture(port) as path:
        client = RawClient(host, port)
        client.command("EHLO raw.test")
        client.command(f"MAIL FROM:<{SENDER}>")
        client.command(f"RCPT TO:<{GOOD}>")
        assert client.command("DATA")[0] == 354
        client.send(b"Subject: bare lf\r\n\r\nline one\nline two\r\n.\r\n")
        assert client.read_reply()[0] == 250
        client.command("QUIT")
        client.close()

    record = transcripts(smtpscope, validate_record, path, port)
    assert "bare_lf_in_data" in anomaly_kinds(record)
    transaction = only_one(record["transactions"])
    assert transaction["outcome"] == "delivered"
    assert transaction["message"]["subject"] == "bare lf"
