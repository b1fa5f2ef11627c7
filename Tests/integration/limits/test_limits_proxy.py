"""End-to-end: sender limits in `smtpscope proxy --rules DIR` (rules/README.md, "Limits").

Real clients (swaks, Python's smtplib) through the proxy to an aiosmtpd upstream that records what it
received (proxy/upstream_peer.py): a budget of N lets exactly N through and the rest get the rule's
4xx, a recipients budget, `mode monitor`, the verdict's text in the record, `/metrics`, counters that
survive a SIGHUP reload, and `rules test --against` replaying the records.
"""
import signal
import smtplib
import subprocess
import time
import urllib.request

from proxy_support import COMMAND_TIMEOUT, check_records, free_port, listening, recorded, swaks

BUDGET = """
limit "sender-hourly" counts messages per mail_from over 1h max 3

rule "throttle-sender" on mail
  when over_limit("sender-hourly")
  tempfail 451 4.7.1 "${mail_from} has sent ${limit_count(sender-hourly)} messages this hour; try again later"
"""


def write_rules(tmp_path, text):
    directory = tmp_path / "rules"
    directory.mkdir(exist_ok=True)
    (directory / "10-limits.rules").write_text(text)
    return directory


def verdicts(record):
    found = list(record.get("rules") or [])
    for transaction in record.get("transactions") or []:
        found += transaction.get("rules") or []
    return found


def swaks_send(run, sender="alice@example.com", to="bob@example.org"):
    return swaks(run.host, run.port, "--from", sender, "--to", to, expect_success=False)


def test_a_budget_of_n_lets_exactly_n_messages_through(proxy, upstreams, tmp_path, validate_record):
    host, port, record_path = upstreams.aiosmtpd()
    run = proxy((host, port), "--rules", write_rules(tmp_path, BUDGET))
    results = [swaks_send(run) for _ in range(5)]
    assert [r.returncode for r in results[:3]] == [0, 0, 0], results[0].stdout
    for refused in results[3:]:
        assert refused.returncode != 0
        assert "<** 451 4.7.1 alice@example.com has sent 3 messages this hour; try again later" in refused.stdout
    # Another sender has a budget of its own.
    assert swaks_send(run, sender="carol@example.com").returncode == 0
    delivered = [entry for entry in recorded(record_path) if "mail_from" in entry]
    assert [entry["mail_from"] for entry in delivered] == ["alice@example.com"] * 3 + ["carol@example.com"]
    records = run.records(6)
    check_records(records, validate_record, count=6)
    refusals = [v for record in records for v in verdicts(record) if v["rule"] == "throttle-sender"]
    assert len(refusals) == 2
    for verdict in refusals:
        assert verdict["action"] == "tempfail" and verdict["enforced"] is True
        assert verdict["detail"] == ("451 4.7.1 alice@example.com has sent 3 messages this hour; try again later; "
                                     "mail_from alice@example.com reached sender-hourly: 3 messages in 1h")


def test_messages_in_one_session_count_too(proxy, upstreams, tmp_path):
    host, port, record_path = upstreams.aiosmtpd()
    run = proxy((host, port), "--rules", write_rules(tmp_path, BUDGET))
    outcomes = []
    with smtplib.SMTP(run.host, run.port, local_hostname="client.test", timeout=30) as client:
        for _ in range(4):
            try:
                client.sendmail("dave@example.com", ["bob@example.org"], b"Subject: x\r\n\r\nhello\r\n")
                outcomes.append("sent")
            except smtplib.SMTPSenderRefused as error:
                outcomes.append(error.smtp_code)
    assert outcomes == ["sent", "sent", "sent", 451]
    assert len([e for e in recorded(record_path) if "mail_from" in e]) == 3


def test_a_recipients_budget_counts_what_the_upstream_accepted(proxy, upstreams, tmp_path):
    host, port, record_path = upstreams.aiosmtpd("--reject-rcpt", "nobody@example.org")
    run = proxy((host, port), "--rules", write_rules(tmp_path, """
limit "sender-recipients" counts recipients per mail_from over 1h max 4

rule "recipient-budget" on rcpt
  when over_limit("sender-recipients")
  tempfail 452 4.5.3 "Too many recipients for ${mail_from} this hour"
"""))
    with smtplib.SMTP(run.host, run.port, local_hostname="client.test", timeout=30) as client:
        # The upstream refuses nobody@: that recipient does not count.
        refused = client.sendmail("erin@example.com", ["a@example.org", "nobody@example.org", "b@example.org"],
                                  b"Subject: one\r\n\r\nhi\r\n")
        assert list(refused) == ["nobody@example.org"]
        refused = client.sendmail("erin@example.com", ["c@example.org", "d@example.org", "e@example.org"],
                                  b"Subject: two\r\n\r\nhi\r\n")
        assert refused == {"e@example.org": (452, b"4.5.3 Too many recipients for erin@example.com this hour")}
    delivered = [e for e in recorded(record_path) if "rcpt_tos" in e]
    assert [e["rcpt_tos"] for e in delivered] == [["a@example.org", "b@example.org"], ["c@example.org", "d@example.org"]]


def test_monitor_mode_records_what_it_would_have_done(proxy, upstreams, tmp_path, smtpscope):
    host, port, record_path = upstreams.aiosmtpd()
    run = proxy((host, port), "--rules", write_rules(tmp_path, BUDGET.replace("  when over_limit", "  mode monitor\n  when over_limit")))
    assert [swaks_send(run).returncode for _ in range(5)] == [0] * 5
    assert len([e for e in recorded(record_path) if "mail_from" in e]) == 5
    records = run.records(5)
    monitored = [v for record in records for v in verdicts(record)]
    assert [v["enforced"] for v in monitored] == [False, False]
    assert [v["mode"] for v in monitored] == ["monitor", "monitor"]
    # Nothing was refused, so every message counted: 3, then 4 over a budget of 3.
    assert [v["detail"].split("; ")[-1] for v in monitored] == [
        "mail_from alice@example.com reached sender-hourly: 3 messages in 1h",
        "mail_from alice@example.com reached sender-hourly: 4 messages in 1h",
    ]
    # The replay of those records with the budget enforced names the sender and when.
    run.stop()
    transcripts = sorted(run.transcripts.rglob("*.jsonl"))
    replay = smtpscope.run("rules", "test", write_rules(tmp_path, BUDGET), "--against", *transcripts)
    assert replay.returncode == 0, replay.stderr
    assert "limits: who would have been stopped, and when:" in replay.stdout
    line = [l for l in replay.stdout.splitlines() if l.strip().startswith("sender-hourly")]
    assert len(line) == 1, replay.stdout
    assert "sender-hourly (3 messages in 1h): mail_from alice@example.com: 2 refusals, from " in line[0]
    assert 'tempfail by "throttle-sender"' in line[0]


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def metric(text, prefix):
    for line in text.splitlines():
        if line.startswith(prefix + " "):
            return float(line.split()[-1])
    return None


def test_metrics_count_per_limit_never_per_key(proxy, upstreams, tmp_path):
    host, port, _ = upstreams.aiosmtpd()
    metrics_port = free_port()
    run = proxy((host, port), "--rules", write_rules(tmp_path, BUDGET), "--metrics", f"127.0.0.1:{metrics_port}")
    deadline = time.monotonic() + 20
    while not listening(metrics_port) and time.monotonic() < deadline:
        time.sleep(0.05)
    results = [swaks_send(run).returncode for _ in range(4)] + [swaks_send(run, sender="frank@example.com").returncode]
    assert results[:3] == [0, 0, 0] and results[3] != 0 and results[4] == 0
    text = scrape(metrics_port)
    assert metric(text, 'smtpscope_limit_counted_total{limit="sender-hourly"}') == 4
    assert metric(text, 'smtpscope_limit_over_total{limit="sender-hourly"}') == 1
    assert "alice@example.com" not in text and "frank@example.com" not in text


def test_counters_survive_a_reload_that_keeps_the_limit(proxy, upstreams, tmp_path):
    host, port, _ = upstreams.aiosmtpd()
    rules = write_rules(tmp_path, BUDGET)
    run = proxy((host, port), "--rules", rules)
    assert [swaks_send(run).returncode for _ in range(2)] == [0, 0]
    # Same limit (the budget may change), a new reply text: the count of 2 carries over.
    (rules / "10-limits.rules").write_text(BUDGET.replace("try again later", "reloaded"))
    run.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    while "rules re-read" not in run.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "rules re-read" in run.output()
    assert swaks_send(run).returncode == 0
    refused = swaks_send(run)
    assert refused.returncode != 0
    assert "451 4.7.1 alice@example.com has sent 3 messages this hour; reloaded" in refused.stdout


def test_a_pipelined_batch_cannot_pass_a_recipients_budget(proxy, upstreams, tmp_path, validate_record):
    # smtp-sink offers PIPELINING, so swaks sends MAIL, every RCPT and DATA at once: the proxy decides
    # each RCPT before the upstream has answered any of them.
    host, port, _ = upstreams.smtp_sink(dump=False)
    run = proxy((host, port), "--rules", write_rules(tmp_path, """
limit "sender-recipients" counts recipients per mail_from over 1h max 4

rule "recipient-budget" on rcpt
  when over_limit("sender-recipients")
  tempfail 452 4.5.3 "Too many recipients"
"""))
    recipients = ",".join(f"r{n}@upstream.test" for n in range(6))
    completed = swaks(run.host, run.port, "--pipeline", "--from", "gina@client.test", "--to", recipients)
    assert completed.stdout.count("<** 452 4.5.3 Too many recipients") == 2, completed.stdout
    records = run.records(1)
    check_records(records, validate_record, count=1)
    codes = [r["reply"]["code"] for r in records[0]["transactions"][0]["rcpt_to"]]
    assert sorted(codes) == [250, 250, 250, 250, 452, 452]
