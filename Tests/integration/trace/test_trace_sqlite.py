"""End-to-end: the message trace on SQLite. Real clients (swaks, smtplib) send through the real proxy
to an aiosmtpd upstream; the proxy keeps `transcripts/index.sqlite` up to date; `smtpscope trace` finds
every session by every filter; `smtpscope index` rebuilds the same index from the transcript files.
"""
import json
import pathlib
import re
import time
import urllib.request

import pytest

from proxy_support import free_port, swaks
from trace_support import (smtplib_send, trace, trace_ids, trace_lines, transcript_lines, wait_for_index)

RULES = '''rule "no-spam-domain" on mail
  when mail_from.domain == "spam.example"
  reject 550 5.7.1 "Sender domain refused"
'''

HOSTILE_SENDER = "o'brien%_x@quote.example"
HOSTILE_RECIPIENT = "100%_y@under.example"
HOSTILE_SUBJECT = "Grüße 'quoted' \"100%_\" bell\x07"


def start_traffic(proxy, upstreams, tmp_path):
    """Four sessions, each with something only it has; returns (run, index path, {name: session id})."""
    host, port, _ = upstreams.aiosmtpd("--reject-rcpt", "carol@example.net")
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "10-test.rules").write_text(RULES)
    run = proxy((host, port), "--rules", rules, "--quarantine", tmp_path / "quarantine")
    index = run.transcripts / "index.sqlite"

    swaks(run.host, run.port, "--from", "alice@example.org", "--to", "bob@example.net",
          "--header", "Subject: Quarterly report", "--header", "Message-Id: <q1@example.org>")
    refused = smtplib_send(run.host, run.port, "dave@example.org", ["carol@example.net", "erin@other.example"],
                           "From: dave@example.org\r\nSubject: Lunch\r\n\r\nnoon?\r\n")
    assert set(refused) == {"carol@example.net"}
    swaks(run.host, run.port, "--from", "mallory@spam.example", "--to", "bob@example.net", expect_success=False)
    smtplib_send(run.host, run.port, HOSTILE_SENDER, [HOSTILE_RECIPIENT],
                 f"From: x@quote.example\r\nSubject: {HOSTILE_SUBJECT}\r\n\r\nhello\r\n".encode("utf-8"))

    records = run.records(4)
    assert len(records) == 4
    by_sender = {}
    for record in records:
        sender = record["transactions"][0]["mail_from"]["address"]
        by_sender[sender] = record["session_id"]
    ids = {"alice": by_sender["alice@example.org"], "dave": by_sender["dave@example.org"],
           "mallory": by_sender["mallory@spam.example"], "hostile": by_sender[HOSTILE_SENDER]}
    return run, index, ids


def test_proxy_keeps_the_index_and_every_filter_finds_its_session(proxy, upstreams, tmp_path, smtpscope):
    run, index, ids = start_traffic(proxy, upstreams, tmp_path)
    newest_first = wait_for_index(smtpscope, index, 4)
    assert sorted(newest_first) == sorted(ids.values())
    # It holds what the transcripts hold: no wider permissions than theirs.
    assert pathlib.Path(index).stat().st_mode & 0o777 == 0o640

    def found(*args):
        return sorted(trace_ids(smtpscope, index, *args))

    def only(*names):
        return sorted(ids[name] for name in names)

    assert found("--from", "alice@example.org") == only("alice")
    assert found("--from", "ALICE@Example.ORG") == only("alice")
    assert found("--from", "*@example.org") == only("alice", "dave")
    # mallory's MAIL was refused, so that session never named a recipient.
    assert found("--to", "bob@example.net") == only("alice")
    assert found("--to", "*@example.net") == only("alice", "dave")
    assert found("--to", "carol@example.net") == only("dave")
    assert found("--client", "127.0.0.1") == sorted(ids.values())
    assert found("--client", "127.0.0.0/8") == sorted(ids.values())
    assert found("--client", "10.0.0.0/8") == []
    assert found("--client", "::1") == []
    assert found("--since", "1h") == sorted(ids.values())
    assert found("--until", "1h") == []
    assert found("--status", "rejected") == only("mallory")
    assert found("--status", "delivered") == only("alice", "dave", "hostile")
    assert found("--to", "carol@example.net", "--status", "delivered") == only("dave")
    assert found("--rule", "no-spam-domain") == only("mallory")
    assert found("--subject", "quarterly") == only("alice")
    assert found("--message-id", "q1@example.org") == only("alice")
    assert found("--message-id", "<q1@example.org>") == only("alice")
    assert found("--session", ids["dave"]) == only("dave")
    assert trace_ids(smtpscope, index, "--limit", "2") == newest_first[:2]
    # Combined: a filter that holds for another session's transaction does not count.
    assert found("--from", "alice@example.org", "--to", "carol@example.net") == []

    # --since with an RFC 3339 time: the sessions that started at or after the dave session.
    records = {r["session_id"]: r for r in run.records(4)}
    start = records[ids["dave"]]["start"]
    expected = sorted(i for i, r in records.items() if r["start"] >= start)
    assert found("--since", start) == expected

    # jsonl: the records exactly as the transcript has them.
    lines = transcript_lines(run.transcripts)
    for line in trace_lines(smtpscope, index):
        assert line == lines[json.loads(line)["session_id"]]

    # The table: recipients with their replies, outcome, deciding reply, and the rule of a refusal.
    table = trace(smtpscope, index).stdout
    assert "carol@example.net 550" in table and "erin@other.example 250" in table, table
    mallory = [line for line in table.splitlines() if "mallory@spam.example" in line]
    assert len(mallory) == 1 and "rejected" in mallory[0] and "550 5.7.1" in mallory[0] and "no-spam-domain" in mallory[0], table
    assert "4 sessions" in table
    assert run.stop() == 0
    said = run.output()
    assert f"index:        {index} (SQLite)" in said, f"start-up does not say where the index is: {said!r}"


def test_hostile_values_are_stored_and_found_exactly(proxy, upstreams, tmp_path, smtpscope):
    run, index, ids = start_traffic(proxy, upstreams, tmp_path)
    wait_for_index(smtpscope, index, 4)
    assert trace_ids(smtpscope, index, "--from", HOSTILE_SENDER) == [ids["hostile"]]
    assert trace_ids(smtpscope, index, "--to", HOSTILE_RECIPIENT) == [ids["hostile"]]
    assert trace_ids(smtpscope, index, "--to", "*@under.example") == [ids["hostile"]]
    # LIKE's metacharacters are themselves: no address is "%" or "_".
    assert trace_ids(smtpscope, index, "--to", "%") == []
    assert trace_ids(smtpscope, index, "--to", "*@%") == []
    assert trace_ids(smtpscope, index, "--from", "_") == []
    assert trace_ids(smtpscope, index, "--subject", "%_") == [ids["hostile"]]
    assert trace_ids(smtpscope, index, "--subject", "GRÜSSE") == []
    assert trace_ids(smtpscope, index, "--subject", "grüße 'quoted'") == [ids["hostile"]]
    assert trace_ids(smtpscope, index, "--subject", "bell\x07") == [ids["hostile"]]
    assert trace_ids(smtpscope, index, "--subject", "'; DROP TABLE session; --") == []
    # The table never passes a control character to the terminal.
    table = trace(smtpscope, index, "--session", ids["hostile"]).stdout
    assert "\x07" not in table and HOSTILE_SENDER in table
    assert len(trace_ids(smtpscope, index)) == 4


def test_index_rebuilt_from_the_files_gives_the_same_answers(proxy, upstreams, tmp_path, smtpscope):
    run, index, ids = start_traffic(proxy, upstreams, tmp_path)
    wait_for_index(smtpscope, index, 4)
    assert run.stop() == 0
    files = sorted(str(p) for p in run.transcripts.glob("smtpscope-*.jsonl"))
    rebuilt = tmp_path / "rebuilt.sqlite"
    first = smtpscope.run("index", "--index", rebuilt, *files)
    assert first.returncode == 0, first.stderr
    assert "4 sessions read, 4 new" in first.stdout
    again = smtpscope.run("index", "--index", rebuilt, *files)
    assert again.returncode == 0 and "4 sessions read, 0 new" in again.stdout, again.stdout + again.stderr
    queries = [(), ("--from", "*@example.org"), ("--to", "*@example.net"), ("--status", "rejected"),
               ("--rule", "no-spam-domain"), ("--subject", "lunch"), ("--to", HOSTILE_RECIPIENT), ("--limit", "1")]
    for query in queries:
        assert trace_lines(smtpscope, index, *query) == trace_lines(smtpscope, rebuilt, *query), query
        assert trace(smtpscope, index, *query).stdout == trace(smtpscope, rebuilt, *query).stdout, query

    # The proxy's own index deleted: the next start-up rebuilds it from the files, with no new traffic.
    for suffix in ("", "-wal", "-shm"):
        pathlib.Path(str(index) + suffix).unlink(missing_ok=True)
    again = proxy(None, transcripts=run.transcripts)
    wait_for_index(smtpscope, index, 4)
    for query in queries:
        assert trace_lines(smtpscope, index, *query) == trace_lines(smtpscope, rebuilt, *query), query
    assert again.stop() == 0


def test_an_index_that_fails_never_stops_the_mail_and_catches_up(proxy, upstreams, tmp_path, smtpscope):
    host, port, _ = upstreams.aiosmtpd()
    blocked = tmp_path / "blocked"
    blocked.mkdir()  # a directory where the index file should be: SQLite cannot open it
    metrics_port = free_port()
    run = proxy((host, port), "--index", blocked, "--metrics", f"127.0.0.1:{metrics_port}")
    for number in range(3):
        swaks(run.host, run.port, "--from", f"sender{number}@example.org", "--to", "rcpt@example.net")
    assert len(run.records(3)) == 3
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
        failures = re.search(r"^smtpscope_index_failures_total (\d+)", text, re.M)
        if failures and int(failures.group(1)) > 0:
            break
        time.sleep(0.2)
    assert failures and int(failures.group(1)) > 0, text
    blocked.rmdir()
    wait_for_index(smtpscope, blocked, 3)
    assert sorted(trace_ids(smtpscope, blocked)) == sorted(r["session_id"] for r in run.records(3))
    assert run.stop() == 0
    logged = [line for line in run.output().splitlines() if "index:" in line and "relaying and transcripts go on" in line]
    assert len(logged) == 1, run.output()


def test_auth_users_are_found_and_secrets_never_indexed(proxy, upstreams, tmp_path, smtpscope):
    host, port, _ = upstreams.aiosmtpd("--auth-user", "alice", "--auth-password", "s3cret-pw")
    run = proxy((host, port))
    index = run.transcripts / "index.sqlite"
    swaks(run.host, run.port, "--from", "alice@example.org", "--to", "bob@example.net",
          "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "s3cret-pw")
    swaks(run.host, run.port, "--from", "mallory@example.org", "--to", "bob@example.net",
          "--auth", "PLAIN", "--auth-user", "mallory", "--auth-password", "wr0ng-pw", expect_success=False)
    records = {r["auth"]["user"]: r["session_id"] for r in run.records(2)}
    wait_for_index(smtpscope, index, 2)
    assert trace_ids(smtpscope, index, "--user", "alice") == [records["alice"]]
    assert trace_ids(smtpscope, index, "--user", "mallory") == [records["mallory"]]
    assert trace_ids(smtpscope, index, "--user", "ALICE") == []
    assert run.stop() == 0
    for path in run.transcripts.glob("index.sqlite*"):
        data = path.read_bytes()
        assert b"s3cret-pw" not in data and b"wr0ng-pw" not in data, path


def test_index_reads_captures_as_pcap_does_and_retains(smtpscope, tmp_path):
    capture = pathlib.Path(__file__).resolve().parents[2] / "SMTPCaptureTests/Fixtures/corpus/suricata-verify/smtp-errors/smtperr.pcap"
    index = tmp_path / "captures.sqlite"
    first = smtpscope.run("index", "--index", index, capture)
    assert first.returncode == 0, first.stderr
    pcap_lines = [line for line in smtpscope.pcap(capture).stdout.split("\n") if line]
    assert len(pcap_lines) == 4
    assert sorted(trace_lines(smtpscope, index)) == sorted(pcap_lines)
    again = smtpscope.run("index", "--index", index, capture)
    assert "4 sessions read, 0 new" in again.stdout, again.stdout + again.stderr
    assert len(trace_ids(smtpscope, index, "--to", "sghaier@fts.com.tn", "--status", "tempfailed")) == 1
    assert len(trace_ids(smtpscope, index, "--to", "jcastro2111@yahoo.com", "--status", "unknown")) == 1
    assert trace_ids(smtpscope, index, "--to", "jcastro2111@yahoo.com", "--status", "tempfailed") == []
    # These sessions are from 2014 to 2020: --retain 90d deletes every one.
    retained = smtpscope.run("index", "--index", index, "--retain", "90d", capture)
    assert retained.returncode == 0 and "4 sessions older than 90d deleted" in retained.stdout, retained.stdout
    assert trace_ids(smtpscope, index) == []


def test_usage_errors_name_the_flag(smtpscope, tmp_path):
    for args, flag in [(("--client", "example.net"), "--client"), (("--status", "bounced"), "--status"),
                       (("--since", "yesterday"), "--since"), (("--limit", "0"), "--limit"),
                       (("--index", "none"), "--index")]:
        result = smtpscope.run("trace", *args)
        assert result.returncode == 2 and flag in result.stderr, (args, result.stderr)
    missing = smtpscope.run("trace", "--index", tmp_path / "absent.sqlite")
    assert missing.returncode == 1 and "no index at" in missing.stderr
