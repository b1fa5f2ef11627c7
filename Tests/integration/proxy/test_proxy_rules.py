"""End-to-end: every rule action (rules/README.md, "Actions"), enforced by `smtpscope proxy --rules DIR`.

Each test writes a small rules folder, starts an aiosmtpd upstream that records what it received
(upstream_peer.py), runs the proxy between Python's smtplib and that upstream, and checks what the client
was told, what the upstream stored (envelope, header fields, body), what the quarantine holds and what the
transcript says.
"""
import email
import email.policy
import json
import smtplib
import socket
import subprocess

import pytest

from proxy_support import COMMAND_TIMEOUT, check_records, recorded, recorded_contents, unverified_tls_context

MESSAGE = (b"From: Alice <alice@example.com>\r\n"
           b"To: Bob <bob@example.org>\r\n"
           b"Subject: Quarterly figures, confidential\r\n"
           b"X-Remove-Me: yes\r\n"
           b"X-Replace-Me: old\r\n"
           b"\r\n"
           b"Hello Bob,\r\n"
           b".a line that starts with a dot\r\n"
           b"the figures are attached.\r\n")


def write_rules(tmp_path, text, name="10-test.rules"):
    directory = tmp_path / "rules"
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(text)
    return directory


def start(proxy, upstreams, tmp_path, rules_text, *extra):
    host, port, record_path = upstreams.aiosmtpd()
    rules = write_rules(tmp_path, rules_text)
    run = proxy((host, port), "--rules", rules, "--quarantine", tmp_path / "quarantine", *extra)
    return run, record_path


def send(run, mail_from="alice@example.com", rcpts=("bob@example.org",), message=MESSAGE):
    """Sends one message with smtplib; returns (refused recipients, error or None)."""
    with smtplib.SMTP(run.host, run.port, local_hostname="localhost", timeout=30) as client:
        client.ehlo("client.example.com")
        try:
            return client.sendmail(mail_from, list(rcpts), message), None
        except smtplib.SMTPException as error:
            return None, error


def verdicts(record):
    found = list(record.get("rules") or [])
    for transaction in record.get("transactions") or []:
        found += transaction.get("rules") or []
    return found


def one_record(run, validate_record):
    records = run.records(1)
    check_records(records, validate_record, count=1)
    return records[0]


def parse(content):
    return email.message_from_bytes(content, policy=email.policy.SMTP)


def test_reject_at_mail_is_answered_by_the_proxy(proxy, upstreams, tmp_path, validate_record):
    run, record_path = start(proxy, upstreams, tmp_path, """
list our_domains = ["example.com", "example.org"]

rule "corporate-senders-only" on mail
  when not mail_from.domain in our_domains
  reject 550 5.7.1 "Sender domain ${mail_from.domain} is not permitted here"
""")
    _, error = send(run, mail_from="mallory@evil.test")
    assert isinstance(error, smtplib.SMTPSenderRefused)
    assert error.smtp_code == 550
    assert b"5.7.1 Sender domain evil.test is not permitted here" in error.smtp_error
    assert recorded(record_path) == []
    record = one_record(run, validate_record)
    [verdict] = verdicts(record)
    assert (verdict["rule"], verdict["stage"], verdict["action"], verdict["enforced"]) == (
        "corporate-senders-only", "mail", "reject", True)
    assert verdict["file"].endswith("10-test.rules")
    [transaction] = record["transactions"]
    assert transaction["outcome"] == "rejected"
    assert transaction["mail_from"]["reply"]["code"] == 550
    # The upstream never saw the refused MAIL.
    assert not any(e["text"].startswith("MAIL") for e in record["events"] if e["to"] == "server")


def test_monitor_mode_records_and_does_not_enforce(proxy, upstreams, tmp_path, validate_record):
    run, record_path = start(proxy, upstreams, tmp_path, """
rule "watch-outsiders" on mail
  mode monitor
  when mail_from.domain == "evil.test"
  reject 550 5.7.1 "would be refused"
""")
    refused, error = send(run, mail_from="mallory@evil.test")
    assert error is None and refused == {}
    assert [entry["mail_from"] for entry in recorded(record_path)] == ["mallory@evil.test"]
    record = one_record(run, validate_record)
    [verdict] = verdicts(record)
    assert (verdict["action"], verdict["enforced"]) == ("reject", False)
    assert record["transactions"][0]["outcome"] == "delivered"


def test_tempfail_at_rcpt_refuses_only_that_recipient(proxy, upstreams, tmp_path, validate_record):
    run, record_path = start(proxy, upstreams, tmp_path, """
rule "recipient-cap" on rcpt
  when rcpt_count >= 2
  tempfail 452 4.5.3 "Too many recipients"
""")
    refused, error = send(run, rcpts=("r1@example.org", "r2@example.org", "r3@example.org", "r4@example.org"))
    assert error is None
    assert set(refused) == {"r3@example.org", "r4@example.org"}
    assert all(code == 452 for code, _ in refused.values())
    assert [entry["rcpt_tos"] for entry in recorded(record_path)] == [["r1@example.org", "r2@example.org"]]
    record = one_record(run, validate_record)
    assert [v["action"] for v in verdicts(record)] == ["tempfail", "tempfail"]


def test_disconnect_at_helo_closes_with_421(proxy, upstreams, tmp_path, validate_record):
    run, record_path = start(proxy, upstreams, tmp_path, """
rule "no-bare-names" on helo
  when helo == "localhost"
  disconnect 421 "Go away"
""")
    client = smtplib.SMTP(run.host, run.port, local_hostname="localhost", timeout=30)
    code, text = client.ehlo("localhost")
    assert code == 421 and b"Go away" in text
    client.close()
    assert recorded(record_path) == []
    record = one_record(run, validate_record)
    assert [(v["stage"], v["action"]) for v in record["rules"]] == [("helo", "disconnect")]
    assert record["close"]["by"] == "proxy"


def test_accept_ends_the_stage_before_later_rules(proxy, upstreams, tmp_path, validate_record):
    run, record_path = start(proxy, upstreams, tmp_path, """
rule "trusted-partner" on mail
  when mail_from.domain == "partner.test"
  accept

rule "everyone-else" on mail
  reject 550 5.7.1 "Not from here"
""")
    _, error = send(run, mail_from="p@partner.test")
    assert error is None
    _, error = send(run, mail_from="x@other.test")
    assert isinstance(error, smtplib.SMTPSenderRefused) and error.smtp_code == 550
    assert [entry["mail_from"] for entry in recorded(record_path)] == ["p@partner.test"]
    records = run.records(2)
    check_records(records, validate_record, count=2)
    assert [[v["rule"] for v in verdicts(r)] for r in records] == [["trusted-partner"], ["everyone-else"]]


def test_set_mail_from_and_set_rcpt_rewrite_the_envelope_upstream(proxy, upstreams, tmp_path, validate_record):
    run, record_path = start(proxy, upstreams, tmp_path, """
rule "legacy-domain" on mail
  when mail_from.domain == "old.example.com"
  set mail_from "${mail_from.local}@example.com"

rule "moved-mailbox" on rcpt
  when rcpt == "carol@example.org"
  set rcpt "carol.new@example.org"
""")
    refused, error = send(run, mail_from="alice@old.example.com", rcpts=("carol@example.org", "bob@example.org"))
    assert error is None and refused == {}
    [entry] = recorded(record_path)
    assert entry["mail_from"] == "alice@example.com"
    assert entry["rcpt_tos"] == ["carol.new@example.org", "bob@example.org"]
    record = one_record(run, validate_record)
    [transaction] = record["transactions"]
    assert transaction["mail_from"]["address"] == "alice@old.example.com"
    assert transaction["mail_from"]["rewritten_to"] == "alice@example.com"
    assert sorted(v["action"] for v in verdicts(record)) == ["set_mail_from", "set_rcpt"]


def test_bcc_is_added_upstream_only(proxy, upstreams, tmp_path, validate_record):
    run, record_path = start(proxy, upstreams, tmp_path, """
list our_domains = ["example.com"]

rule "archive-external" on message
  when any rcpt.domain not in our_domains
  bcc "archive@example.com"
  tag "external"
""")
    refused, error = send(run, rcpts=("bob@example.org",))
    assert error is None and refused == {}
    [entry] = recorded(record_path)
    assert entry["rcpt_tos"] == ["bob@example.org", "archive@example.com"]
    # The message itself does not name the archive: bcc is envelope only.
    assert b"archive@example.com" not in recorded_contents(record_path)[0]
    record = one_record(run, validate_record)
    assert [(v["action"], v.get("detail")) for v in verdicts(record)] == [
        ("bcc", "archive@example.com"), ("tag", "external")]
    # The client's view of its transaction: one recipient.
    assert [r["address"] for r in record["transactions"][0]["rcpt_to"]] == ["bob@example.org"]


def test_redirect_replaces_every_recipient(proxy, upstreams, tmp_path, validate_record):
    run, record_path = start(proxy, upstreams, tmp_path, """
rule "hold-for-review" on message
  when subject contains "confidential"
  redirect "review@example.com"
""")
    refused, error = send(run, rcpts=("bob@example.org", "dave@example.org"))
    assert error is None and refused == {}
    [entry] = recorded(record_path)
    assert entry["rcpt_tos"] == ["review@example.com"]
    assert entry["mail_from"] == "alice@example.com"
    record = one_record(run, validate_record)
    assert record["transactions"][0]["outcome"] == "delivered"


def test_header_actions_rewrite_the_message_canonically(proxy, upstreams, tmp_path, validate_record):
    run, record_path = start(proxy, upstreams, tmp_path, """
rule "confidential" on message
  when subject matches /(?i)\\bconfidential\\b/
  prefix_subject "[SECURE] "
  add_header "X-Policy" "confidential for ${mail_from}"
  set_header "X-Replace-Me" "new"
  remove_header "X-Remove-Me"
""")
    refused, error = send(run)
    assert error is None and refused == {}
    [content] = recorded_contents(record_path)
    message = parse(content)
    assert message["Subject"] == "[SECURE] Quarterly figures, confidential"
    assert message["X-Policy"] == "confidential for alice@example.com"
    assert message.get_all("X-Replace-Me") == ["new"]
    assert message["X-Remove-Me"] is None
    # The body arrives byte for byte, its leading dot un-stuffed.
    assert content.split(b"\r\n\r\n", 1)[1] == MESSAGE.split(b"\r\n\r\n", 1)[1]
    record = one_record(run, validate_record)
    assert [v["action"] for v in verdicts(record)] == ["prefix_subject", "add_header", "set_header", "remove_header"]


def test_header_values_never_carry_line_breaks(proxy, upstreams, tmp_path, validate_record):
    # Hostile-input case 18: an interpolated value holding CRLF must not start a new header field.
    run, record_path = start(proxy, upstreams, tmp_path, """
rule "echo-subject" on message
  add_header "X-Seen-Subject" "${subject}"
""")
    evil = MESSAGE.replace(b"Subject: Quarterly figures, confidential",
                           b"Subject: =?UTF-8?Q?hi=0D=0ABcc:_victim@evil.test?=")
    refused, error = send(run, message=evil)
    assert error is None and refused == {}
    [content] = recorded_contents(record_path)
    header = content.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in header
    assert b"X-Seen-Subject: hi  Bcc: victim@evil.test" in header


def test_discard_answers_250_and_sends_nothing(proxy, upstreams, tmp_path, validate_record):
    run, record_path = start(proxy, upstreams, tmp_path, """
rule "drop-newsletters" on message
  when header("X-Remove-Me") == "yes"
  discard
""")
    refused, error = send(run)
    assert error is None and refused == {}
    assert recorded(record_path) == []
    record = one_record(run, validate_record)
    [transaction] = record["transactions"]
    assert transaction["outcome"] == "discarded"
    assert transaction["data"]["reply"]["code"] == 250


def test_quarantine_keeps_the_message_and_its_envelope(proxy, upstreams, tmp_path, validate_record):
    run, record_path = start(proxy, upstreams, tmp_path, """
rule "big-mail" on message
  when size > 100
  quarantine "oversize"
""")
    refused, error = send(run)
    assert error is None and refused == {}
    assert recorded(record_path) == []
    record = one_record(run, validate_record)
    [transaction] = record["transactions"]
    assert transaction["outcome"] == "quarantined"
    quarantine = tmp_path / "quarantine"
    [eml] = sorted(quarantine.glob("*.eml"))
    [meta] = sorted(quarantine.glob("*.json"))
    assert eml.read_bytes() == MESSAGE
    metadata = json.loads(meta.read_text())
    assert metadata["reason"] == "oversize"
    assert metadata["rules"] == ["big-mail"]
    assert metadata["mail_from"] == "alice@example.com"
    assert metadata["rcpt_to"] == ["bob@example.org"]
    assert metadata["session_id"] == record["session_id"]
    assert metadata["size"] == len(MESSAGE)


def test_a_quarantined_message_of_a_client_that_closes_at_once_is_kept_and_recorded(proxy, upstreams, tmp_path, validate_record):
    """The quarantine is written off the event loop: a client that sends the end of data and QUIT
    and closes without waiting still leaves the message in the quarantine, and the record says so."""
    run, record_path = start(proxy, upstreams, tmp_path, """
rule "big-mail" on message
  when size > 100
  quarantine "oversize"
""")
    with socket.create_connection((run.host, run.port), timeout=30) as client:
        reader = client.makefile("rb")
        assert reader.readline().startswith(b"220")
        client.sendall(b"HELO client.example.com\r\n")
        assert reader.readline().startswith(b"250")
        client.sendall(b"MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n")
        assert [reader.readline()[:3] for _ in range(3)] == [b"250", b"250", b"354"]
        client.sendall(MESSAGE.replace(b"\r\n.a line", b"\r\n..a line") + b".\r\nQUIT\r\n")
    record = one_record(run, validate_record)
    [transaction] = record["transactions"]
    assert transaction["outcome"] == "quarantined"
    assert recorded(record_path) == []
    [eml] = sorted((tmp_path / "quarantine").glob("*.eml"))
    assert eml.read_bytes() == MESSAGE


def test_reject_at_message_leaves_the_upstream_clean_for_the_next_message(proxy, upstreams, tmp_path, validate_record):
    run, record_path = start(proxy, upstreams, tmp_path, """
rule "no-executables" on message
  when any attachment.filename matches /\\.(exe|scr|js|vbs)$/i
  reject 554 5.7.1 "Executable attachments are not accepted"
""")
    attachment = (b"From: a@example.com\r\nTo: b@example.org\r\nSubject: tool\r\nMIME-Version: 1.0\r\n"
                  b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
                  b"--XX\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"setup.EXE\"\r\n"
                  b"Content-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n--XX--\r\n")
    with smtplib.SMTP(run.host, run.port, local_hostname="localhost", timeout=30) as client:
        client.ehlo("client.example.com")
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("a@example.com", ["b@example.org"], attachment)
        assert refused.value.smtp_code == 554
        # The same connection goes on: the next message is delivered.
        assert client.sendmail("a@example.com", ["b@example.org"], MESSAGE) == {}
    assert [entry["rcpt_tos"] for entry in recorded(record_path)] == [["b@example.org"]]
    assert recorded_contents(record_path) == [MESSAGE]
    record = one_record(run, validate_record)
    assert [t["outcome"] for t in record["transactions"]] == ["rejected", "delivered"]


def test_log_and_tag_are_recorded(proxy, upstreams, tmp_path, validate_record):
    run, record_path = start(proxy, upstreams, tmp_path, """
rule "note-auth-less" on mail
  when auth.user == none
  log "unauthenticated sender ${mail_from} from ${client.ip}"
  tag "anonymous"
""")
    refused, error = send(run)
    assert error is None and refused == {}
    assert len(recorded(record_path)) == 1
    record = one_record(run, validate_record)
    assert [(v["action"], v.get("detail")) for v in verdicts(record)] == [
        ("log", "unauthenticated sender alice@example.com from 127.0.0.1"), ("tag", "anonymous")]
    run.stop()
    assert "unauthenticated sender alice@example.com from 127.0.0.1" in run.output()


def test_invalid_rules_never_start_a_proxy(proxy_binary, tmp_path):
    rules = write_rules(tmp_path, 'rule "bad" on rcpt\n  when subject contains "x"\n  reject 550 "no"\n')
    completed = subprocess.run([str(proxy_binary), "proxy", "--listen", "127.0.0.1:0", "--rules", str(rules)],
                               capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    assert completed.returncode == 2
    assert "10-test.rules:2:" in completed.stderr
    assert "subject" in completed.stderr


def test_sighup_reloads_rules_for_new_sessions_and_keeps_them_when_invalid(proxy, upstreams, tmp_path, validate_record):
    import signal
    import threading
    import time

    refuse_evil = """
rule "outsiders" on mail
  when mail_from.domain == "evil.test"
  reject 550 5.7.1 "Outsiders refused"
"""
    run, record_path = start(proxy, upstreams, tmp_path, refuse_evil)
    rules_file = tmp_path / "rules" / "10-test.rules"
    results = []
    stop = threading.Event()

    def load():
        # A steady stream of sessions from an allowed sender while the rules change under it.
        while not stop.is_set():
            refused, error = send(run, mail_from="alice@example.com")
            results.append(error is None and refused == {})

    explicit = 0

    def probe(sender):
        nonlocal explicit
        explicit += 1
        return send(run, mail_from=sender)[1]

    worker = threading.Thread(target=load)
    worker.start()
    try:
        error = probe("mallory@evil.test")
        assert isinstance(error, smtplib.SMTPSenderRefused)

        # A valid change takes effect for new sessions.
        rules_file.write_text(refuse_evil.replace("evil.test", "worse.test"))
        run.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while True:
            error = probe("mallory@evil.test")
            if error is None or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert error is None, "the reloaded rules never took effect"
        error = probe("eve@worse.test")
        assert isinstance(error, smtplib.SMTPSenderRefused)

        # An invalid change keeps the rules in force.
        rules_file.write_text('rule "broken" on mail\n  when subject == "x"\n  reject 550 "no"\n')
        run.process.send_signal(signal.SIGHUP)
        time.sleep(1)
        error = probe("eve@worse.test")
        assert isinstance(error, smtplib.SMTPSenderRefused)
        error = probe("mallory@evil.test")
        assert error is None
    finally:
        stop.set()
        worker.join(timeout=60)
    assert results and all(results), f"{results.count(False)} of {len(results)} sessions under load failed"
    sessions = len(results) + explicit
    records = run.records(sessions)
    check_records(records, validate_record, count=sessions)
    assert run.process.poll() is None or run.process.returncode == 0
    run.stop()
    output = run.output()
    assert "reload: rules re-read" in output
    assert "reload: rules not reloaded, keeping the previous ones" in output
    assert "10-test.rules:2:" in output


def peak_rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_large_spooled_message_goes_upstream_at_the_upstreams_pace(proxy, upstreams, tmp_path, validate_record):
    """Spooling keeps memory up to a threshold (1 MiB), then a temporary file. Releasing the spool must
    not undo that by queueing the whole message for the upstream at once."""
    run, record_path = start(proxy, upstreams, tmp_path, """
rule "stamp" on message
  when size > 0
  add_header "X-Scanned" "yes"
""")
    # A warm-up message first, so the peak below is the large message's alone.
    assert send(run) == ({}, None)
    before = peak_rss_kib(run.process.pid)
    body = b"".join(b"%08d the quick brown fox jumps over the lazy dog, spooled to disk\r\n" % n for n in range(130_000))
    message = MESSAGE + body
    assert len(message) > 8_500_000
    assert send(run, message=message) == ({}, None)
    grown = peak_rss_kib(run.process.pid) - before
    assert grown < 6 * 1024, f"peak RSS grew by {grown} KiB for a {len(message)}-octet message"
    contents = recorded_contents(record_path)
    assert len(contents) == 2
    assert contents[1].split(b"\r\n\r\n", 1)[1] == message.split(b"\r\n\r\n", 1)[1]
    assert parse(contents[1])["X-Scanned"] == "yes"
    records = run.records(2)
    check_records(records, validate_record, count=2)


def test_a_spool_that_cannot_be_written_refuses_the_message_and_the_session_goes_on(proxy, upstreams, tmp_path, validate_record):
    """Past 1 MiB a spooled message goes to a temporary file, written off the event loop. When that
    fails (here $TMPDIR does not exist) the client is refused with a 4xx, nothing reaches the
    upstream, and the next message of the session is relayed as usual."""
    host, port, record_path = upstreams.aiosmtpd()
    rules = write_rules(tmp_path, """
rule "stamp" on message
  when size > 0
  add_header "X-Scanned" "yes"
""")
    run = proxy((host, port), "--rules", rules, env={"TMPDIR": str(tmp_path / "no-such-directory")})
    large = MESSAGE + b"x" * 70 + b"\r\n" + (b"y" * 998 + b"\r\n") * 2000
    with smtplib.SMTP(run.host, run.port, local_hostname="localhost", timeout=30) as client:
        client.ehlo("client.example.com")
        try:
            client.sendmail("alice@example.com", ["bob@example.org"], large)
            raise AssertionError("a message the spool lost was accepted")
        except smtplib.SMTPResponseException as error:
            assert 400 <= error.smtp_code < 500, error
        client.rset()
        assert client.sendmail("alice@example.com", ["bob@example.org"], MESSAGE) == {}
    contents = recorded_contents(record_path)
    assert len(contents) == 1 and parse(contents[0])["X-Scanned"] == "yes"
    record = one_record(run, validate_record)
    refused, delivered = record["transactions"]
    assert refused["data"]["reply"]["code"] == 451 and delivered["outcome"] == "delivered"
    assert (refused.get("message") or {}).get("sha256") is None
    [anomaly] = [a for a in record["anomalies"] if a["kind"] == "message_truncated"]
    assert anomaly["detail"].startswith("spool: ")


def test_tls_facts_reach_the_rules_after_starttls(proxy, upstreams, tmp_path, validate_record):
    """`tls` and `tls.version` are what the client leg negotiated, as `pcap --rules` reads them too."""
    run, record_path = start(proxy, upstreams, tmp_path, """
rule "tls-version" on mail
  mode monitor
  when tls == true
  tag "over ${tls.version}"
""", "--tls-cert", "auto")
    context = unverified_tls_context()
    with smtplib.SMTP(run.host, run.port, local_hostname="localhost", timeout=30) as client:
        client.starttls(context=context)
        client.ehlo("client.example.com")
        assert client.sendmail("alice@example.com", ["bob@example.org"], MESSAGE) == {}
        version = client.sock.version()
    record = one_record(run, validate_record)
    assert record["tls"]["version"] == version
    [verdict] = record["transactions"][0]["rules"]
    assert verdict["detail"] == f"over {version}"
