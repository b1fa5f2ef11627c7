"""Hostile-input cases 6, 18 and 19 (README, Security) through the real proxy: dot-stuffing both ways,
rewrites that carry CR/LF/NUL, and header sections that are malformed, ambiguous or too large."""
import json
import subprocess

import pytest

from proxy_support import RawClient, check_records, recorded_contents
from security_support import NO_RULES, anomaly_kinds, open_transaction

DOT_RULES = '''\
rule "dot-line-seen" on message
  when body contains ".foo"
  tag "saw-dot-foo"

rule "stuffed-line-seen" on message
  when body contains "..foo"
  tag "saw-stuffed-foo"

rule "dot-header" on message
  when size > 0
  add_header ".Dot" "added"
'''

ECHO_RULES = '''\
rule "echo" on message
  when header("X-Evil") matches /(.*)/s
  add_header "X-Echo" "${1}"
  set_header "X-Subject-Copy" "${subject}"
'''


def rules_dir(tmp_path, name, text):
    directory = tmp_path / name
    directory.mkdir()
    (directory / "hostile.rules").write_text(text)
    return directory


def send_one(run, content):
    client = RawClient(run.host, run.port)
    try:
        open_transaction(client)
        code, lines = client.command(content + b".\r\n")
        assert client.command("QUIT\r\n")[0] == 221
    finally:
        client.close()
    return code, lines


# --------------------------------------------------------------------------------------------------
# Row 6: dot-stuffing


def test_row6_a_stuffed_line_is_read_unstuffed_and_relayed_stuffed(proxy, upstreams, validate_record, tmp_path):
    host, port, record_path = upstreams.aiosmtpd()
    run = proxy((host, port), "--rules", rules_dir(tmp_path, "dots", DOT_RULES))
    code, lines = send_one(run, b"Subject: dots\r\n\r\nfirst\r\n..foo\r\nlast\r\n")
    assert code == 250, lines
    [content] = recorded_contents(record_path)
    # aiosmtpd un-stuffs what it receives: `.foo` here means `..foo` went over the wire, and the added
    # header `.Dot: added` arrived stuffed too (unstuffed it would read `Dot: added`).
    lines = content.split(b"\r\n")
    assert b".foo" in lines, content
    assert b".Dot: added" in lines, content
    [record] = run.records(1)
    check_records([record], validate_record)
    text = json.dumps(record)
    assert "saw-dot-foo" in text, "the rules saw the line unstuffed"
    assert "saw-stuffed-foo" not in text, "the rules must not see the stuffing dot"


def test_row6_cut_through_relays_a_stuffed_line_stuffed(proxy, upstreams, validate_record):
    host, port, record_path = upstreams.aiosmtpd()
    run = proxy((host, port), *NO_RULES)
    code, lines = send_one(run, b"Subject: dots\r\n\r\n..foo\r\n...\r\n.\r\n"[:-3])
    assert code == 250, lines
    [content] = recorded_contents(record_path)
    assert content.split(b"\r\n")[2:4] == [b".foo", b".."], content


# --------------------------------------------------------------------------------------------------
# Row 18: rewrites carrying CR, LF or NUL


@pytest.mark.parametrize("escape", ["\\r", "\\n", "\\0"], ids=["CR", "LF", "NUL"])
def test_row18_a_static_rewrite_with_a_line_break_is_refused_at_check_time(proxy_binary, tmp_path, escape):
    directory = rules_dir(tmp_path, "static", f'rule "bad" on message\n  when size > 0\n'
                                              f'  add_header "X-A" "a{escape}b"\n')
    completed = subprocess.run([str(proxy_binary), "rules", "check", str(directory)], capture_output=True,
                               text=True, timeout=60)
    assert completed.returncode != 0
    assert "CR, LF or NUL" in completed.stdout + completed.stderr
    # And a proxy never starts with it.
    started = subprocess.run([str(proxy_binary), "proxy", "--listen", "127.0.0.1:1", "--rules", str(directory)],
                             capture_output=True, text=True, timeout=60)
    assert started.returncode != 0


def test_row18_an_interpolated_line_break_becomes_a_space(proxy, upstreams, validate_record, tmp_path):
    host, port, record_path = upstreams.aiosmtpd()
    run = proxy((host, port), "--rules", rules_dir(tmp_path, "echo", ECHO_RULES))
    # RFC 2047 lets a header carry CR LF once decoded: the rule reads the decoded value.
    message = (b"Subject: =?utf-8?q?s=0D=0AInjected-Subject:_1?=\r\n"
               b"X-Evil: =?utf-8?q?a=0D=0AInjected:_yes=00z?=\r\n\r\nbody\r\n")
    code, lines = send_one(run, message)
    assert code == 250, lines
    [content] = recorded_contents(record_path)
    header = content.split(b"\r\n\r\n", 1)[0]
    fields = header.split(b"\r\n")
    assert not [f for f in fields if f.startswith((b"Injected", b"Injected-Subject"))], header
    assert b"\0" not in content
    echo = [f for f in fields if f.startswith(b"X-Echo:")]
    assert echo and b"Injected: yes" in echo[0], header
    [record] = run.records(1)
    check_records([record], validate_record)


# --------------------------------------------------------------------------------------------------
# Row 19: header sections


def test_row19_a_line_without_colon_ends_nothing_silently(proxy, upstreams, validate_record):
    host, port, record_path = upstreams.aiosmtpd()
    run = proxy((host, port), *NO_RULES)
    message = b"Subject: colon\r\nNo colon on this line\r\nFrom: evil@evil.test\r\n\r\nbody\r\n"
    code, lines = send_one(run, message)
    assert code == 250, lines
    # Relayed exactly: the proxy never repairs or reorders a header section.
    assert recorded_contents(record_path) == [message]
    [record] = run.records(1)
    check_records([record], validate_record)
    assert "header_without_colon" in anomaly_kinds(record), anomaly_kinds(record)


def test_row19_two_from_fields_are_flagged(proxy, upstreams, validate_record):
    host, port, record_path = upstreams.aiosmtpd()
    run = proxy((host, port), *NO_RULES)
    message = b"From: boss@example.org\r\nFrom: evil@evil.test\r\nSubject: two\r\n\r\nbody\r\n"
    code, lines = send_one(run, message)
    assert code == 250, lines
    assert recorded_contents(record_path) == [message]
    [record] = run.records(1)
    check_records([record], validate_record)
    assert "duplicate_header" in anomaly_kinds(record), anomaly_kinds(record)


def test_row19_a_header_section_over_the_limit_gets_552(proxy, upstreams, validate_record):
    host, port, record_path = upstreams.aiosmtpd()
    run = proxy((host, port), *NO_RULES)
    # 100 KB is the documented header section limit (README, "Limits and their defaults"); this one
    # is about 150 KB.
    fields = b"".join(b"X-Filler-%05d: %s\r\n" % (i, b"v" * 60) for i in range(2000))
    code, lines = send_one(run, b"Subject: big header\r\n" + fields + b"\r\nbody\r\n")
    assert code == 552 and lines[0].startswith("552 5.3.4"), lines
    assert recorded_contents(record_path) == []
    [record] = run.records(1)
    check_records([record], validate_record)
    assert record["transactions"][0]["outcome"] == "rejected"
