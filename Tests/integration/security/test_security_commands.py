"""Hostile-input cases 7-17 (README, Security) through the real proxy: synchronisation, upstream refusals
mid-stream, line and recipient limits, SIZE, command syntax, odd addresses, open-relay probes, deadlines,
connection and error limits, BDAT framing. Every reply code is the one the README's table of cases
gives."""
import socket
import time

import pytest

from proxy_support import RawClient, check_records, recorded, recorded_contents
from security_support import LEGIT, NO_RULES, anomaly_kinds, open_transaction, rss_kib, upstream_lines


def greet(client, ehlo="raw.client.test"):
    assert client.reply()[0] == 220
    code, lines = client.command(f"EHLO {ehlo}\r\n")
    assert code == 250, lines
    return lines


def closed(client, timeout=20):
    """True once the proxy closed the connection (EOF or reset), reading and dropping anything else."""
    client.sock.settimeout(timeout)
    try:
        while True:
            chunk = client.sock.recv(65536)
            if not chunk:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


# --------------------------------------------------------------------------------------------------
# Row 7: protocol synchronisation


def test_row7_content_sent_with_data_before_354_is_a_synchronization_error(proxy, upstreams, validate_record):
    host, port, record_path = upstreams.aiosmtpd()
    run = proxy((host, port), *NO_RULES)
    client = RawClient(run.host, run.port)
    try:
        greet(client)
        assert client.command("MAIL FROM:<a@client.test>\r\n")[0] == 250
        assert client.command("RCPT TO:<b@example.org>\r\n")[0] == 250
        code, lines = client.command(b"DATA\r\n" + LEGIT + b".\r\n")
        assert code == 554 and lines[0].startswith("554 5.5.0"), lines
        assert closed(client)
    finally:
        client.close()
    assert recorded_contents(record_path) == []
    [record] = run.records(1)
    check_records([record], validate_record)
    assert "unparsed_bytes" in anomaly_kinds(record)


def test_row7_a_command_before_the_greeting_is_a_synchronization_error(proxy, hostile, validate_record):
    host, port, record_path = hostile.start("--greeting-delay", "3")
    run = proxy((host, port), *NO_RULES)
    client = RawClient(run.host, run.port)
    try:
        client.send("EHLO early.client.test\r\n")
        code, lines = client.reply()
        assert code == 554 and lines[0].startswith("554 5.5.0"), lines
        assert closed(client)
    finally:
        client.close()
    [record] = run.records(1)
    check_records([record], validate_record)
    assert "command_before_greeting" in anomaly_kinds(record)
    assert not [line for line in upstream_lines(record) if line.startswith("EHLO")]


# --------------------------------------------------------------------------------------------------
# Row 8: the upstream refuses DATA while the client streams content


@pytest.mark.parametrize("flag,code_class", [("-r", 4), ("-f", 5)], ids=["4xx", "5xx"])
def test_row8_content_streamed_into_a_refused_data_is_never_a_command(proxy, upstreams, validate_record, flag,
                                                                      code_class):
    host, port, dump = upstreams.smtp_sink(flag, "data")
    run = proxy((host, port), *NO_RULES)
    client = RawClient(run.host, run.port)
    smuggled = b"MAIL FROM:<s@evil.test>\r\nRCPT TO:<v@example.org>\r\nDATA\r\nP-CONTENT\r\n.\r\n"
    try:
        greet(client)
        assert client.command("MAIL FROM:<a@client.test>\r\n")[0] == 250
        assert client.command("RCPT TO:<b@example.org>\r\n")[0] == 250
        client.send(b"DATA\r\n" + smuggled)
        got, refusal = client.reply()
        assert got // 100 == code_class, refusal
        # Nothing of the content is answered as a command: the proxy closes instead.
        follow, lines = client.reply()
        assert follow is None, lines
    finally:
        client.close()
    [record] = run.records(1)
    check_records([record], validate_record)
    # The client got the upstream's own reply to DATA.
    server_replies = [e["text"] for e in record["events"] if e.get("from") == "server"]
    assert refusal[0] in server_replies, (refusal, server_replies)
    sent = upstream_lines(record)
    assert "MAIL FROM:<s@evil.test>" not in sent and not any("evil.test" in line for line in sent), sent
    assert not [p for p in dump.iterdir() if p.is_file()]


# --------------------------------------------------------------------------------------------------
# Row 9: command line lengths


def test_row9_command_lines_up_to_the_limit_are_accepted_and_longer_ones_refused_in_sync(proxy, upstreams,
                                                                                       validate_record):
    host, port, _ = upstreams.aiosmtpd()
    run = proxy((host, port), *NO_RULES)
    client = RawClient(run.host, run.port)
    try:
        greet(client)
        for total, expected in ((512, 250), (2048, 250), (2049, 500)):
            line = b"NOOP " + b"x" * (total - len(b"NOOP ") - 2) + b"\r\n"
            assert len(line) == total
            code, lines = client.command(line)
            assert code == expected, (total, lines)
            if expected == 500:
                assert lines[0].startswith("500 5.5.2"), lines
            # In sync: the next command gets its own reply.
            assert client.command("NOOP\r\n")[0] == 250, total
        assert client.command("QUIT\r\n")[0] == 221
    finally:
        client.close()
    [record] = run.records(1)
    check_records([record], validate_record)
    assert "overlong_line" in anomaly_kinds(record)


def test_row9_ten_megabytes_without_crlf_hit_the_hard_cap_and_close_with_flat_memory(proxy, upstreams,
                                                                                   validate_record):
    host, port, _ = upstreams.aiosmtpd()
    run = proxy((host, port), *NO_RULES)
    client = RawClient(run.host, run.port)
    try:
        greet(client)
        before = rss_kib(run.process.pid)
        block = b"A" * 65536
        sent = 0
        try:
            while sent < 10 * 1024 * 1024:
                client.sock.sendall(block)
                sent += len(block)
        except (BrokenPipeError, ConnectionResetError):
            pass
        code, lines = client.reply()
        assert code == 421, lines
        assert closed(client)
        after = rss_kib(run.process.pid)
    finally:
        client.close()
    # The proxy holds at most one line's worth plus its read buffers, never the 10 MB.
    assert after - before < 8 * 1024, f"RSS grew by {after - before} KiB"
    [record] = run.records(1)
    check_records([record], validate_record)
    assert "overlong_line" in anomaly_kinds(record)


# --------------------------------------------------------------------------------------------------
# Row 10: recipients


def test_row10_the_1001st_recipient_gets_452_4_5_3(proxy, upstreams, validate_record):
    host, port, record_path = upstreams.aiosmtpd()
    run = proxy((host, port), *NO_RULES)
    client = RawClient(run.host, run.port)
    try:
        greet(client)
        assert client.command("MAIL FROM:<a@client.test>\r\n")[0] == 250
        client.send(b"".join(f"RCPT TO:<r{i}@example.org>\r\n".encode() for i in range(1001)))
        replies = [client.reply() for _ in range(1001)]
        assert [code for code, _ in replies[:1000]] == [250] * 1000
        code, lines = replies[1000]
        assert code == 452 and lines[0].startswith("452 4.5.3"), lines
        assert client.command("DATA\r\n")[0] == 354
        assert client.command(LEGIT + b".\r\n")[0] == 250
        assert client.command("QUIT\r\n")[0] == 221
    finally:
        client.close()
    [entry] = [e for e in recorded(record_path) if "rcpt_tos" in e]
    assert len(entry["rcpt_tos"]) == 1000 and "r1000@example.org" not in entry["rcpt_tos"]
    [record] = run.records(1)
    check_records([record], validate_record)
    assert "RCPT TO:<r1000@example.org>" not in upstream_lines(record)


# --------------------------------------------------------------------------------------------------
# Row 11: SIZE


@pytest.mark.parametrize("parameter,code,enhanced", [
    ("SIZE=99999999999999999999", 552, "5.3.4"),
    ("SIZE=abc", 501, "5.5.4"),
], ids=["overflow", "not-a-number"])
def test_row11_bad_size_parameters(proxy, upstreams, validate_record, parameter, code, enhanced):
    host, port, record_path = upstreams.aiosmtpd()
    run = proxy((host, port), *NO_RULES)
    client = RawClient(run.host, run.port)
    try:
        greet(client)
        got, lines = client.command(f"MAIL FROM:<a@client.test> {parameter}\r\n")
        assert got == code and lines[0].startswith(f"{code} {enhanced}"), lines
        assert client.command("NOOP\r\n")[0] == 250
    finally:
        client.close()
    [record] = run.records(1)
    assert not [line for line in upstream_lines(record) if line.startswith("MAIL")]


@pytest.mark.parametrize("declared", [None, 1000], ids=["over-the-limit", "over-the-declared-size"])
def test_row11_content_larger_than_allowed_or_declared_gets_552_after_end_of_data(proxy, upstreams, validate_record,
                                                                                 declared):
    host, port, record_path = upstreams.aiosmtpd()
    run = proxy((host, port), "--message-size-limit", "20000", *NO_RULES)
    body = b"Subject: big\r\n\r\n" + b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n" * (
        400 if declared is None else 40)
    client = RawClient(run.host, run.port)
    try:
        greet(client)
        size = f" SIZE={declared}" if declared else ""
        assert client.command(f"MAIL FROM:<a@client.test>{size}\r\n")[0] == 250
        assert client.command("RCPT TO:<b@example.org>\r\n")[0] == 250
        assert client.command("DATA\r\n")[0] == 354
        code, lines = client.command(body + b".\r\n")
        assert code == 552 and lines[0].startswith("552 5.3.4"), lines
        # In sync, and nothing was delivered.
        assert client.command("NOOP\r\n")[0] == 250
    finally:
        client.close()
    assert recorded_contents(record_path) == []
    [record] = run.records(1)
    check_records([record], validate_record)
    assert record["transactions"][0]["data"]["reply"]["code"] == 552


# --------------------------------------------------------------------------------------------------
# Row 12: bytes that are not allowed in commands


def test_row12_nul_in_a_command_gets_501(proxy, upstreams, validate_record):
    host, port, record_path = upstreams.aiosmtpd()
    run = proxy((host, port), *NO_RULES)
    client = RawClient(run.host, run.port)
    try:
        greet(client)
        code, lines = client.command(b"MAIL FROM:<a\0b@client.test>\r\n")
        assert code == 501, lines
        assert client.command("NOOP\r\n")[0] == 250
    finally:
        client.close()
    [record] = run.records(1)
    check_records([record], validate_record)
    assert not [line for line in upstream_lines(record) if line.startswith("MAIL")]


def test_row12_invalid_utf8_with_smtputf8_gets_500_5_5_2(proxy, upstreams, validate_record):
    host, port, record_path = upstreams.aiosmtpd()
    run = proxy((host, port), *NO_RULES)
    client = RawClient(run.host, run.port)
    try:
        greet(client)
        code, lines = client.command(b"MAIL FROM:<\xc3\x28bad@client.test> SMTPUTF8\r\n")
        assert code == 500 and lines[0].startswith("500 5.5.2"), lines
        assert client.command("NOOP\r\n")[0] == 250
    finally:
        client.close()
    [record] = run.records(1)
    check_records([record], validate_record)
    assert not [line for line in upstream_lines(record) if line.startswith("MAIL")]


def test_row12_a_non_ascii_address_without_smtputf8_gets_553_5_6_7(proxy, upstreams, validate_record):
    host, port, record_path = upstreams.aiosmtpd()
    run = proxy((host, port), *NO_RULES)
    client = RawClient(run.host, run.port)
    try:
        greet(client)
        code, lines = client.command("MAIL FROM:<jörg@client.test>\r\n".encode())
        assert code == 553 and lines[0].startswith("553 5.6.7"), lines
        assert client.command("MAIL FROM:<a@client.test>\r\n")[0] == 250
        code, lines = client.command("RCPT TO:<jörg@example.org>\r\n".encode())
        assert code == 553 and lines[0].startswith("553 5.6.7"), lines
    finally:
        client.close()
    [record] = run.records(1)
    check_records([record], validate_record)
    assert not [line for line in upstream_lines(record) if "j\u00f6rg" in line]


# --------------------------------------------------------------------------------------------------
# Row 13: odd addresses are parsed as RFC 5321 says or passed on verbatim, never reinterpreted


@pytest.mark.parametrize("address,forms", [
    ("<@a.test:u@b.test>", ["<@a.test:u@b.test>", "<u@b.test>"]),
    ("<u%b.test@a.test>", ["<u%b.test@a.test>"]),
    ('<"u@b.test"@a.test>', ['<"u@b.test"@a.test>']),
    ("<u@[127.0.0.1]>", ["<u@[127.0.0.1]>"]),
], ids=["source-route", "percent-hack", "quoted-at", "address-literal"])
def test_row13_odd_recipients_reach_the_upstream_as_rfc5321_reads_them(proxy, upstreams, validate_record,
                                                                       address, forms):
    host, port, record_path = upstreams.aiosmtpd()
    run = proxy((host, port), *NO_RULES)
    client = RawClient(run.host, run.port)
    try:
        greet(client)
        assert client.command("MAIL FROM:<a@client.test>\r\n")[0] == 250
        code, lines = client.command(f"RCPT TO:{address}\r\n")
    finally:
        client.close()
    [record] = run.records(1)
    check_records([record], validate_record)
    sent = [line for line in upstream_lines(record) if line.startswith("RCPT")]
    if sent:
        # Passed on: exactly as written (or with the source route dropped, RFC 5321 §4.1.1.3), and the
        # upstream's verdict is the client's.
        assert sent[0] in [f"RCPT TO:{form}" for form in forms], sent
        upstream_replies = [e["text"] for e in record["events"] if e.get("from") == "server"]
        assert any(text.startswith(str(code)) for text in upstream_replies), (code, upstream_replies)
    else:
        assert code == 501, (code, lines)


def test_row13_mail_from_with_a_space_and_no_brackets_is_never_rewritten(proxy, upstreams, validate_record):
    host, port, record_path = upstreams.aiosmtpd()
    run = proxy((host, port), *NO_RULES)
    client = RawClient(run.host, run.port)
    try:
        greet(client)
        code, lines = client.command("MAIL FROM: a@b.test\r\n")
    finally:
        client.close()
    [record] = run.records(1)
    check_records([record], validate_record)
    sent = [line for line in upstream_lines(record) if line.startswith("MAIL")]
    # RFC 5321 has no space after the colon and needs the brackets. The proxy may refuse it, pass it on
    # verbatim, or read it as Postfix does (the mailbox a@b.test) and write that canonically; the
    # mailbox itself is never changed.
    assert sent in ([], ["MAIL FROM: a@b.test"], ["MAIL FROM:<a@b.test>"]), sent
    if not sent:
        assert code == 501, lines


# --------------------------------------------------------------------------------------------------
# Row 14: open-relay probe


def test_row14_an_open_relay_probe_gets_the_upstreams_refusal(proxy, postfixes, validate_record):
    # Postfix relays only for 192.0.2.0/24: the proxy, on 127.0.0.1, is no trusted network.
    postfix = postfixes(main={"mynetworks": "192.0.2.0/24"})
    run = proxy(("127.0.0.1", postfix.port), *NO_RULES)
    client = RawClient(run.host, run.port)
    try:
        greet(client)
        assert client.command("MAIL FROM:<a@client.test>\r\n")[0] == 250
        code, refusal = client.command("RCPT TO:<victim@elsewhere.test>\r\n")
        assert code == 554 and "Relay access denied" in refusal[0], refusal
        code, lines = client.command("DATA\r\n")
        assert code == 554 or code == 503, lines
    finally:
        client.close()
    assert postfix.stored() == []
    [record] = run.records(1)
    check_records([record], validate_record)
    # The refusal is the upstream's own reply, relayed; the proxy answered nothing in its place.
    server_replies = [e["text"] for e in record["events"] if e.get("from") == "server"]
    assert refusal[0] in server_replies, (refusal, server_replies)
    [transaction] = record["transactions"]
    assert transaction["outcome"] != "delivered"


# --------------------------------------------------------------------------------------------------
# Row 15: slow clients


def test_row15_slowloris_command_gets_421_4_4_2_on_the_per_command_deadline(proxy, upstreams, validate_record):
    host, port, _ = upstreams.aiosmtpd()
    run = proxy((host, port), "--idle-timeout", "3", *NO_RULES)
    client = RawClient(run.host, run.port)
    try:
        greet(client)
        client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        line = b"NOOP " + b"x" * 40 + b"\r\n"
        answered = None
        for octet in line:
            try:
                client.send(bytes([octet]))
            except (BrokenPipeError, ConnectionResetError):
                break
            # One octet per second: each keeps the connection busy, none completes a command.
            client.sock.settimeout(1)
            try:
                data = client.sock.recv(4096)
            except socket.timeout:
                continue
            answered = data
            break
        assert answered is not None and answered.startswith(b"421 4.4.2"), answered
    finally:
        client.close()


def test_row15_data_at_one_octet_per_second_gets_421_4_4_2(proxy, upstreams, validate_record):
    host, port, record_path = upstreams.aiosmtpd()
    run = proxy((host, port), "--data-block-timeout", "3", *NO_RULES)
    client = RawClient(run.host, run.port)
    try:
        open_transaction(client)
        client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        answered = None
        for octet in b"Subject: slow\r\n\r\n" + b"x" * 40:
            try:
                client.send(bytes([octet]))
            except (BrokenPipeError, ConnectionResetError):
                break
            client.sock.settimeout(1)
            try:
                data = client.sock.recv(4096)
            except socket.timeout:
                continue
            answered = data
            break
        assert answered is not None and answered.startswith(b"421 4.4.2"), answered
    finally:
        client.close()
    assert recorded_contents(record_path) == []


# --------------------------------------------------------------------------------------------------
# Row 16: connection and error limits


def test_row16_the_51st_connection_from_one_ip_gets_421_4_7_0(proxy, upstreams, validate_record):
    host, port, _ = upstreams.smtp_sink()
    run = proxy((host, port), *NO_RULES)
    clients = []
    try:
        for _ in range(50):
            client = RawClient(run.host, run.port)
            clients.append(client)
            assert client.reply()[0] == 220
        extra = RawClient(run.host, run.port)
        clients.append(extra)
        code, lines = extra.reply()
        assert code == 421 and lines[0].startswith("421 4.7.0"), lines
        assert closed(extra)
        # One leaves, and the next is served again.
        clients.pop(0).close()
        deadline = time.monotonic() + 10
        while True:
            again = RawClient(run.host, run.port)
            clients.append(again)
            code, _ = again.reply()
            if code == 220 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert code == 220
    finally:
        for client in clients:
            client.close()


def test_row16_too_many_bad_commands_get_421_4_7_0(proxy, upstreams, validate_record):
    host, port, _ = upstreams.aiosmtpd()
    run = proxy((host, port), *NO_RULES)
    client = RawClient(run.host, run.port)
    codes = []
    try:
        greet(client)
        for _ in range(21):
            try:
                code, lines = client.command("BOGUS\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            codes.append(code)
            if code == 421:
                assert lines[0].startswith("421 4.7.0"), lines
                break
        assert codes[-1] == 421, codes
        assert all(code >= 500 for code in codes[:-1]), codes
        assert len(codes) <= 21
        assert closed(client)
    finally:
        client.close()


# --------------------------------------------------------------------------------------------------
# Row 17: BDAT (the proxy offers CHUNKING itself and relays the message upstream with DATA)


def start_bdat(client):
    lines = greet(client)
    assert any("CHUNKING" in line for line in lines), lines
    assert client.command("MAIL FROM:<a@client.test>\r\n")[0] == 250
    assert client.command("RCPT TO:<b@example.org>\r\n")[0] == 250


def test_row17_bdat_with_fewer_octets_than_announced_times_out_with_421(proxy, upstreams, validate_record):
    host, port, record_path = upstreams.aiosmtpd()
    run = proxy((host, port), "--data-block-timeout", "3", *NO_RULES)
    client = RawClient(run.host, run.port, timeout=30)
    try:
        start_bdat(client)
        client.send(b"BDAT 100 LAST\r\n" + b"y" * 50)
        code, lines = client.reply()
        assert code == 421 and lines[0].startswith("421 4.4.2"), lines
        assert closed(client)
    finally:
        client.close()
    assert recorded_contents(record_path) == []


def test_row17_bdat_takes_exactly_its_octets_and_the_rest_is_a_command(proxy, upstreams, validate_record):
    host, port, record_path = upstreams.aiosmtpd()
    run = proxy((host, port), *NO_RULES)
    client = RawClient(run.host, run.port)
    try:
        start_bdat(client)
        # 22 octets after BDAT 10: ten of content, then two commands the proxy must read as commands.
        client.send(b"BDAT 10\r\n" + b"Hi: ther\r\n" + b"NOOP\r\nNOOP\r\n")
        first, lines = client.reply()
        assert first == 250 and "10 octets" in lines[0], lines
        assert client.reply()[0] == 250       # NOOP
        assert client.reply()[0] == 250       # NOOP
        code, lines = client.command(b"BDAT 0 LAST\r\n")
        assert code == 250, lines
        assert client.command("QUIT\r\n")[0] == 221
    finally:
        client.close()
    [content] = recorded_contents(record_path)
    assert content.replace(b"\r\n", b"\n").rstrip(b"\n") == b"Hi: ther"
    [record] = run.records(1)
    check_records([record], validate_record)
    assert "NOOP" not in upstream_lines(record)


@pytest.mark.parametrize("command", [b"BDAT 18446744073709551616\r\n", b"BDAT -1\r\n"], ids=["2^64", "minus-one"])
def test_row17_bdat_with_a_bad_size_is_refused(proxy, upstreams, validate_record, command):
    """Nobody can tell where such a chunk ends: 521 5.5.4 and close (Postfix's answer), and the
    bytes after it are never read as commands."""
    host, port, record_path = upstreams.aiosmtpd()
    run = proxy((host, port), *NO_RULES)
    client = RawClient(run.host, run.port)
    try:
        start_bdat(client)
        code, lines = client.command(command + b"RSET\r\nMAIL FROM:<s@x.test>\r\n")
        assert code == 521 and lines[0].startswith("521 5.5.4"), lines
        assert client.reply() == (None, []), "nothing after the 521: the connection closes"
    finally:
        client.close()
    assert recorded_contents(record_path) == []
    [record] = run.records(1)
    check_records([record], validate_record)
    assert "RSET" not in upstream_lines(record)


def test_row17_bdat_0_without_last_then_data_after_bdat(proxy, upstreams, validate_record):
    host, port, record_path = upstreams.aiosmtpd()
    run = proxy((host, port), *NO_RULES)
    client = RawClient(run.host, run.port)
    try:
        start_bdat(client)
        code, lines = client.command(b"BDAT 0\r\n")
        assert code in (250, 501), lines
        code, lines = client.command(b"DATA\r\n")
        assert code == 503 and lines[0].startswith("503 5.5.1"), lines
        assert client.command("RSET\r\n")[0] == 250
        assert client.command("QUIT\r\n")[0] == 221
    finally:
        client.close()
    assert recorded_contents(record_path) == []
