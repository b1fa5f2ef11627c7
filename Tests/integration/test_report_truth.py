"""What `smtpscope pcap` and its report say of ordinary sessions between real peers (issue 15).

The captures are in Tests/SMTPCaptureTests/Fixtures/real-peers (its README says how each was made)
and in the shared corpus. Each test fails on the misdiagnosis it guards against: a normal session
called a reset, implicit TLS read as plaintext commands, binary bytes printed, a flow lost without
a word.
"""
import json
import pathlib
import re
import signal
import socket
import subprocess
import time

from integration_support import CORPUS, REPO_ROOT, find_binary, parse_jsonl, swaks

REAL = REPO_ROOT / "Tests" / "SMTPCaptureTests" / "Fixtures" / "real-peers"
SMTPERR = CORPUS / "suricata-verify" / "smtp-errors" / "smtperr.pcap"

# C0 controls but LF, DEL, C1 controls and U+FFFD: none may reach a terminal.
UNPRINTABLE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\ufffd]")


def pcap(smtpscope, *args):
    path, _ = find_binary()
    completed = subprocess.run([str(path), "pcap", *map(str, args)], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    return completed


def field(report, label):
    """The value of a header field of the report ("Sessions   completed 3, ...")."""
    match = re.search(rf"^{label} +(.*)$", report, re.MULTILINE)
    assert match, f"no {label} field in:\n{report}"
    return match.group(1)


def test_an_rst_after_quit_and_221_is_teardown_not_a_reset(smtpscope):
    records = parse_jsonl(pcap(smtpscope, REAL / "smtp-source-rst-after-quit.pcap").stdout)
    assert len(records) == 3
    for record in records:
        assert record["outcome"] == "completed", record
        assert record["close"] == {"by": "client", "reason": "QUIT"}
        assert [t["outcome"] for t in record["transactions"]] == ["delivered"]
    report = pcap(smtpscope, REAL / "smtp-source-rst-after-quit.pcap", "--report").stdout
    assert field(report, "Sessions") == "completed 3"
    assert "reset 0, timeout 0, server_closed 0" in report


def test_a_421_greeting_then_fin_then_rst_is_server_closed(smtpscope):
    # Port 2526 is not an SMTP port: the 421 greeting is what makes the flow SMTP.
    completed = pcap(smtpscope, REAL / "greeting-421-port-2526.pcap")
    record, = parse_jsonl(completed.stdout)
    assert record["greeting"]["code"] == 421
    assert record["outcome"] == "server_closed"
    assert record["close"] == {"by": "server", "reason": "FIN"}
    report = pcap(smtpscope, REAL / "greeting-421-port-2526.pcap", "--report").stdout
    assert "reset 0, timeout 0, server_closed 1" in report
    assert "server_closed: FIN by server" in report


def test_implicit_tls_on_another_port_is_tls_not_commands(smtpscope):
    record, = parse_jsonl(pcap(smtpscope, REAL / "implicit-tls-port-2466.pcap", "--ports", "2466").stdout)
    assert record["tls"]["mode"] == "implicit"
    assert record["tls"]["established"] is True
    assert record["tls"]["version"] == "TLSv1.3"
    assert record["tls"]["sni"] == "mx.example"
    assert record["outcome"] == "completed"
    assert record["events"] == []
    assert not record["anomalies"], record["anomalies"]


def test_plaintext_on_port_465_is_smtp_not_a_failed_handshake(smtpscope):
    record, = parse_jsonl(pcap(smtpscope, REAL / "plaintext-on-port-465.pcap").stdout)
    assert record["tls"]["mode"] == "none", record["tls"]
    assert record["tls"]["failure"] is None
    assert record["outcome"] == "completed"
    assert [t["outcome"] for t in record["transactions"]] == ["delivered"]
    assert not record["anomalies"], record["anomalies"]


def test_flows_not_recognised_as_smtp_are_counted_with_the_ports_hint(smtpscope):
    completed = pcap(smtpscope, REAL / "implicit-tls-port-2466.pcap")
    assert completed.stdout == ""
    assert "1 TCP flow was not recognised as SMTP" in completed.stderr
    assert "--ports" in completed.stderr
    report = pcap(smtpscope, REAL / "implicit-tls-port-2466.pcap", "--report").stdout
    assert "0 sessions" in field(report, "Input")
    assert field(report, "Not read").startswith("1 TCP flow was not recognised as SMTP")
    assert "--ports" in report


def test_binary_lines_are_summarised_in_text_transcripts_and_reports(smtpscope):
    text = pcap(smtpscope, SMTPERR, "--format", "text").stdout
    assert not UNPRINTABLE.search(text), UNPRINTABLE.search(text)
    assert not re.search(r"\\x(?!09)", text), re.search(r".*\\x(?!09).*", text).group(0)
    assert re.search(r"C: \[\d+ octets that are not SMTP\]", text)
    records = parse_jsonl(pcap(smtpscope, SMTPERR).stdout)
    junk = next(r for r in records if r["client"]["port"] == 49274)
    client_lines = [e["text"] for e in junk["events"] if e["from"] == "client"]
    assert client_lines and all(re.fullmatch(r"\[\d+ octets? that (is|are) not SMTP\]", line) for line in client_lines)
    report = pcap(smtpscope, SMTPERR, "--report").stdout
    assert not UNPRINTABLE.search(report), UNPRINTABLE.search(report)


def test_a_decrypted_capture_is_not_a_tls_failure(smtpscope):
    # Arkime's smtp-decrypted.pcap: both peers go on in plaintext after the 220 to STARTTLS, as a
    # decrypted capture does. No handshake was seen, so none failed; the four messages were delivered.
    capture = CORPUS / "arkime" / "smtp-decrypted.pcap"
    records = parse_jsonl(pcap(smtpscope, capture).stdout)
    transactions = [t for r in records for t in r["transactions"]]
    assert len(transactions) == 4 and all(t["outcome"] == "delivered" for t in transactions)
    for record in records:
        assert record["outcome"] != "tls_failed", record["tls"]
        assert record["tls"]["mode"] == "starttls"
        assert record["tls"]["established"] is None
        kinds = [a["kind"] for a in record["anomalies"]]
        # Stripping by a machine in the middle looks the same on the wire: said once, as such.
        assert kinds.count("starttls_stripped") == 1 and "plaintext_after_starttls" not in kinds
        assert "decrypted capture" in next(a["detail"] for a in record["anomalies"] if a["kind"] == "starttls_stripped")
    report = pcap(smtpscope, capture, "--report").stdout
    assert field(report, "Sessions") == "completed 4"
    assert field(report, "Messages") == "4 delivered, 0 not delivered"


def test_a_client_reset_inside_data_is_a_broken_off_message_not_an_unanswered_end(smtpscope):
    capture = REAL / "client-reset-mid-data.pcap.gz"
    record, = parse_jsonl(pcap(smtpscope, capture).stdout)
    assert record["outcome"] == "reset"
    assert record["close"] == {"by": "client", "reason": "RST"}
    transaction, = record["transactions"]
    assert transaction["outcome"] == "aborted"
    report = pcap(smtpscope, capture, "--report").stdout
    assert "<CRLF>.<CRLF> after" not in report, report
    assert "unanswered" not in report, report
    assert "message broken off: 1" in report
    assert re.search(r"no end of data after \d+ octets of content: the client reset the connection", report)
    assert "not delivered to bob@example.org" in report


def test_a_server_421_after_the_delivered_message_is_no_delivery_failure(smtpscope):
    # arkime/smtp-data-250: the message is delivered (250 2.0.0), then the client idles until the
    # server's "421 4.4.2 ... timeout exceeded".
    report = pcap(smtpscope, CORPUS / "arkime" / "smtp-data-250.pcap", "--report").stdout
    assert field(report, "Messages") == "1 delivered, 0 not delivered"
    assert "Not delivered: 0 failures" in report, report
    assert "reset 0, timeout 0, server_closed 1" in report


# --------------------------------------------------------------------------------------------------
# The report of proxy records: what the proxy itself did is named, not blamed on the server.


def _listening(port):
    """A LISTEN socket on the port, read from /proc (a probe connection would be a session)."""
    wanted = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in pathlib.Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1].endswith(wanted) and fields[3] == "0A":
                return True
    return False


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def proxy_report(processes, tmp_path, upstream_port, *swaks_args, rules=None):
    """Runs one swaks session through `smtpscope proxy`, stops it, and returns `smtpscope report`."""
    path, _ = find_binary()
    port = _free_port()
    transcripts = tmp_path / "transcripts"
    transcripts.mkdir()
    argv = [str(path), "proxy", "--listen", f"127.0.0.1:{port}", "--upstream", f"127.0.0.1:{upstream_port}",
            "--transcripts", str(transcripts), "--rules", rules or "none"]
    # From tmp_path, so a rules folder is named as the records name it: "rules/10-test.rules".
    proxy = processes.start(argv, "smtpscope proxy", cwd=tmp_path)
    deadline = time.monotonic() + 30
    while not _listening(port):
        assert proxy.poll() is None and time.monotonic() < deadline, processes.output(proxy)
        time.sleep(0.05)
    swaks("127.0.0.1", port, *swaks_args, expect_success=False)
    assert processes.stop(proxy, sig=signal.SIGTERM, timeout=30) == 0, processes.output(proxy)
    files = sorted(transcripts.glob("*.jsonl"))
    assert files, "the proxy wrote no transcript"
    completed = subprocess.run([str(path), "report", *map(str, files)], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def test_an_unreachable_upstream_is_named_not_called_overloaded(processes, tmp_path, smtpscope):
    closed = _free_port()  # nothing listens there: the connection is refused
    report = proxy_report(processes, tmp_path, closed, "--to", "bob@example.org", "--from", "alice@example.com")
    assert "upstream unreachable: 1" in report, report
    assert re.search(r"upstream unreachable:[^\n]*\n?[^\n]*connection refused", report, re.IGNORECASE), report
    assert "overloaded" not in report


def test_a_refusal_by_a_rule_names_the_rule_and_its_line(processes, tmp_path, smtpscope, peers):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "10-test.rules").write_text(
        "# refuse one recipient\n"
        'rule "no-blocked-recipient" on rcpt\n'
        '  when rcpt == "blocked@example.org"\n'
        '  reject 550 5.7.1 "Recipient refused by local policy"\n'
    )
    _, sink = peers.smtp_sink()
    report = proxy_report(processes, tmp_path, sink, "--to", "blocked@example.org,ok@example.org",
                          "--from", "alice@example.com", rules="rules")
    assert "refused by an smtpscope rule: 1" in report, report
    assert re.search(r"RCPT TO:<blocked@example\.org> \(rule no-blocked-recipient,\s+rules/10-test\.rules:2\)", report), report
    assert "policy rejection" not in report


def test_a_deferral_without_a_reply_code_is_the_failure_not_an_unanswered_end(smtpscope):
    # smtperr.pcap, client port 49448: after the message Yahoo sends "4.7.0 [IPTS04] Messages from
    # ... temporarily deferred due to user complaints" with no reply code, and closes.
    report = pcap(smtpscope, SMTPERR, "--report").stdout
    block = report[report.index("10.6.8.101:49448"):]
    assert "unanswered" not in block.split("\n\n")[0], block
    assert re.search(r"reply +a line without a reply code \(temporary, by its status code\)\n +4\.7\.0 \[IPTS04\]", report), report
    assert "answered without a reply code: 4.7.0 [IPTS04]" in " ".join(report.split())


def test_the_shipped_sender_is_login_rule_lets_a_login_send_as_its_own_address(smtpscope):
    # zeek/smtp.pcap: AUTH LOGIN as gurpartap@patriots.in, then MAIL FROM:<gurpartap@patriots.in>.
    path, _ = find_binary()
    completed = subprocess.run([str(path), "rules", "test", str(REPO_ROOT / "rules"), "--against",
                                str(CORPUS / "zeek" / "smtp.pcap")], capture_output=True, text=True,
                               timeout=120, cwd=REPO_ROOT)
    assert completed.returncode == 0, completed.stderr
    assert "gurpartap@patriots.in without TLS" in completed.stdout  # the AUTH was seen
    assert "sender-is-login" not in completed.stdout, completed.stdout


# --------------------------------------------------------------------------------------------------
# Reading what was recorded


def run_cli(*args, stdin=None):
    path, _ = find_binary()
    return subprocess.run([str(path), *map(str, args)], capture_output=True, text=True, timeout=120, input=stdin)


def test_show_prints_records_as_pcap_format_text_does(smtpscope, tmp_path):
    capture = CORPUS / "arkime" / "smtp-data-521.pcap"
    records = tmp_path / "records.jsonl"
    records.write_text(pcap(smtpscope, capture).stdout)
    shown = run_cli("show", records)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == pcap(smtpscope, capture, "--format", "text").stdout
    assert "521 5.2.1" in shown.stdout


def test_report_and_show_given_a_capture_say_which_command_reads_it(smtpscope):
    capture = REAL / "greeting-421-port-2526.pcap"
    report = run_cli("report", capture)
    assert report.returncode == 2
    assert f"use 'smtpscope pcap --report {capture}'" in report.stderr
    assert "line 1" not in report.stderr  # no parse errors of binary "lines"
    show = run_cli("show", capture)
    assert show.returncode == 2
    assert "pcap --format text" in show.stderr


def test_report_format_json_carries_the_counts_and_each_failure(smtpscope, tmp_path):
    records = tmp_path / "records.jsonl"
    records.write_text(pcap(smtpscope, CORPUS / "arkime" / "smtp-data-521.pcap").stdout)
    completed = run_cli("report", "--format", "json", records)
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    assert report["sessions"] == 1
    assert report["transaction_outcomes"]["rejected"] == 1
    failure, = report["failures"]
    assert failure["cause"] == "content_rejected" and failure["stage"] == "end-of-data"
    assert failure["reply"]["code"] == 521 and failure["reply"]["enhanced"] == "5.2.1"
    assert failure["temporary"] is False


def test_version_is_printed(smtpscope):
    completed = run_cli("--version")
    assert completed.returncode == 0
    assert completed.stdout.startswith("smtpscope ")


def test_a_truncated_capture_is_said_in_the_report(smtpscope, tmp_path):
    data = (CORPUS / "arkime" / "smtp-data-521.pcap").read_bytes()
    truncated = tmp_path / "truncated.pcap"
    truncated.write_bytes(data[: len(data) * 2 // 3 + 7])  # cut inside a packet record
    report = pcap(smtpscope, truncated, "--report").stdout
    capture_section = report[report.index("Capture problems"):]
    assert "truncat" in capture_section.lower(), capture_section
    assert "a message cut there is incomplete" in " ".join(capture_section.split())


def test_the_readme_troubleshooting_report_is_what_smtpscope_prints(smtpscope):
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("### Troubleshooting a real failure"):]
    block = section[section.index("```\n") + 4:]
    block = block[:block.index("```")]
    report = pcap(smtpscope, SMTPERR, "--report").stdout
    for part in block.split("...\n"):
        assert part.strip("\n") in report, part


def test_after_a_lost_end_of_data_the_servers_250_ends_the_message_and_nothing_is_invented(smtpscope):
    record, = parse_jsonl(pcap(smtpscope, REAL / "lost-end-of-data.pcap.gz").stdout)
    assert [t["outcome"] for t in record["transactions"]] == ["delivered"] * 3
    first = record["transactions"][0]
    assert first["data"]["size"] is None  # the capture lost part of it
    assert first["message"]["sha256"] is None  # no digest of a message that was never whole
    kinds = [a["kind"] for a in record["anomalies"]]
    assert "capture_gap" in kinds
    for invented in ("malformed_command", "reply_without_command", "unexpected_reply", "premature_data_reply"):
        assert invented not in kinds, record["anomalies"]
    client = [e["text"] for e in record["events"] if e["from"] == "client" and e.get("octets") is None]
    assert client == ["HELO vm"] + ["MAIL FROM:<alice@example.com>", "RCPT TO:<bob@example.org>", "DATA"] * 3 + ["QUIT"]


def test_a_bad_filter_is_a_usage_error_naming_the_flag(smtpscope):
    completed = run_cli("pcap", "--filter", "tcp prt 25", CORPUS / "arkime" / "smtp-data-521.pcap")
    assert completed.returncode == 2
    assert '--filter "tcp prt 25"' in completed.stderr and "pcap-filter(7)" in completed.stderr
