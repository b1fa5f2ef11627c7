"""End-to-end: `smtpscope rules check`, `rules test --against` (captures and transcripts), `--diff`, and
`pcap --rules` (rules/README.md). Nothing here is enforced; the verdicts say what would have happened.

The captures are the Arkime test-suite ones under Tests/SMTPCaptureTests/Fixtures/corpus (their senders,
recipients and subjects are listed in SOURCES.md there).
"""
import json
import pathlib
import subprocess

from integration_support import COMMAND_TIMEOUT, REPO_ROOT

CORPUS = REPO_ROOT / "Tests" / "SMTPCaptureTests" / "Fixtures" / "corpus" / "arkime"
CAPTURES = [CORPUS / name for name in ("smtp-data-250.pcap", "smtp-data-521.pcap", "smtp-decrypted.pcap",
                                       "smtp-rcpt-553.pcap")]

OLD_RULES = """
rule "no-aol" on mail
  when mail_from.domain == "aol.com"
  reject 550 5.7.1 "No AOL here"

rule "urgent" on message
  when subject matches /(?i)\\burgent\\b/
  tag "urgent"
"""

# The new set also refuses the French ministry's test sender, and watches (monitor) unqualified recipients.
NEW_RULES = OLD_RULES + """
rule "no-santa" on mail
  when mail_from.local == "papanoel"
  reject 550 5.7.1 "Not on the list"

rule "unqualified-recipient" on rcpt
  mode monitor
  when not rcpt.domain contains "."
  reject 553 5.1.3 "Use a fully qualified address"
"""


def run(smtpscope, *args):
    return subprocess.run([str(smtpscope.path), *map(str, args)], capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT)


def rules_dir(tmp_path, name, text):
    directory = tmp_path / name
    directory.mkdir()
    (directory / "10-test.rules").write_text(text)
    return directory


def test_the_shipped_rules_are_valid(smtpscope):
    completed = run(smtpscope, "rules", "check", REPO_ROOT / "rules")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "valid" in completed.stdout and "INVALID" not in completed.stdout


def test_check_names_every_problem_with_its_position(smtpscope, tmp_path):
    directory = rules_dir(tmp_path, "bad", """rule "a" on rcpt
  when subject contains "x"
  reject 550 "no"

rule "b" on mail
  when mail_frm == "x"
  tempfail 550 "wrong class"

rule "c" on message
  when body matches /(unclosed/
  tag "x"
""")
    completed = run(smtpscope, "rules", "check", directory)
    assert completed.returncode == 2
    out = completed.stdout
    assert "10-test.rules:2:" in out and "subject" in out
    assert "10-test.rules:6:" in out and "mail_from" in out  # the did-you-mean hint
    assert "10-test.rules:7:" in out
    assert "10-test.rules:10:" in out
    assert "INVALID" in out


def simulate(smtpscope, rules, *files):
    completed = run(smtpscope, "rules", "test", rules, "--against", *files, "--format", "jsonl")
    assert completed.returncode == 0, completed.stderr
    return [json.loads(line) for line in completed.stdout.splitlines() if line.strip()]


def verdicts(record):
    found = [(v["stage"], v["rule"], v["action"]) for v in record.get("rules") or []]
    for transaction in record["transactions"]:
        found += [(v["stage"], v["rule"], v["action"]) for v in transaction["rules"]]
    return found


def test_rules_test_says_what_the_rules_would_do_to_each_captured_session(smtpscope, tmp_path, validate_record):
    records = simulate(smtpscope, rules_dir(tmp_path, "old", OLD_RULES), *CAPTURES)
    assert len(records) == 7
    for record in records:
        validate_record(record)
        for transaction in record["transactions"]:
            assert all(v["enforced"] is False for v in transaction["rules"])
    by_sender = {r["transactions"][0]["mail_from"]["address"]: verdicts(r) for r in records if r["transactions"]}
    assert by_sender["12345678@aol.com"] == [("mail", "no-aol", "reject")]
    # The refused MAIL ends the replay of that transaction: its message rules never run.
    assert by_sender["1234567899@aol.com"] == [("mail", "no-aol", "reject")]
    assert by_sender["papanoel@intradef.gouv.fr"] == []


def test_rules_test_reads_transcripts_as_well_as_captures(smtpscope, tmp_path):
    transcripts = tmp_path / "week.jsonl"
    completed = run(smtpscope, "pcap", *CAPTURES, "--transcripts", transcripts)
    assert completed.returncode == 0, completed.stderr
    rules = rules_dir(tmp_path, "old", OLD_RULES)
    from_captures = simulate(smtpscope, rules, *CAPTURES)
    from_transcripts = simulate(smtpscope, rules, transcripts)
    assert [verdicts(r) for r in from_transcripts] == [verdicts(r) for r in from_captures]
    text = run(smtpscope, "rules", "test", rules, "--against", transcripts)
    assert text.returncode == 0
    assert "would reject at mail (transaction 1) by \"no-aol\"" in text.stdout
    assert "7 sessions: 3 matched a rule, 3 would have been stopped or settled by one" in text.stdout


def test_diff_lists_exactly_the_sessions_whose_verdicts_change(smtpscope, tmp_path):
    old = rules_dir(tmp_path, "old", OLD_RULES)
    new = rules_dir(tmp_path, "new", NEW_RULES)
    completed = run(smtpscope, "rules", "test", new, "--against", *CAPTURES, "--diff", old)
    assert completed.returncode == 0, completed.stderr
    changed = [line.split()[1] for line in completed.stdout.splitlines() if line.startswith("session ")]
    # Only the ministry's two sessions change. The unqualified recipient (smtp-rcpt-553) comes from an AOL
    # sender that both sets refuse at MAIL, so the new rcpt rule never sees it.
    expected = [r["session_id"] for r in simulate(smtpscope, old, *CAPTURES)
                if r["transactions"] and r["transactions"][0]["mail_from"]["address"].startswith("papanoel@")]
    assert len(expected) == 2
    assert sorted(changed) == sorted(expected)
    assert f"2 of 7 sessions change between {old} and {new}" in completed.stdout
    assert '+ mail "no-santa" reject 550 5.7.1 Not on the list' in completed.stdout
    assert "unqualified-recipient" not in completed.stdout


def test_pcap_with_rules_records_the_verdicts(smtpscope, tmp_path, validate_record):
    rules = rules_dir(tmp_path, "old", OLD_RULES)
    completed = run(smtpscope, "pcap", CORPUS / "smtp-data-250.pcap", "--rules", rules)
    assert completed.returncode == 0, completed.stderr
    [record] = [json.loads(line) for line in completed.stdout.splitlines()]
    validate_record(record)
    [verdict] = record["transactions"][0]["rules"]
    assert (verdict["rule"], verdict["action"], verdict["enforced"], verdict["mode"]) == ("no-aol", "reject", False, "enforce")
    assert verdict["detail"] == "550 5.7.1 No AOL here"
    assert "no-aol" in completed.stderr  # the summary


def test_invalid_rules_are_exit_2_for_every_command(smtpscope, tmp_path):
    rules = rules_dir(tmp_path, "bad", 'rule "x" on mail\n  reject 250 "not a refusal"\n')
    for args in (["rules", "test", rules, "--against", CAPTURES[0]], ["pcap", CAPTURES[0], "--rules", rules]):
        completed = run(smtpscope, *args)
        assert completed.returncode == 2, args
        assert "10-test.rules:2:" in completed.stderr


BODY_RULES = """
rule "body-mentions-test" on message
  when body matches /(?i)\\btest/
  tag "mentions a test"

rule "has-mime-version" on message
  when header("MIME-Version") != none
  tag "MIME"
"""


def test_a_capture_judges_body_and_header_rules_and_a_transcript_says_it_cannot(smtpscope, tmp_path):
    rules = rules_dir(tmp_path, "content", BODY_RULES)
    on_capture = run(smtpscope, "rules", "test", rules, "--against", *CAPTURES)
    assert on_capture.returncode == 0, on_capture.stderr
    assert "not judged" not in on_capture.stdout
    from_captures = simulate(smtpscope, rules, *CAPTURES)
    judged = [v["rule"] for r in from_captures for t in r["transactions"] for v in t.get("rules") or []]
    assert "has-mime-version" in judged and "body-mentions-test" in judged, judged

    transcripts = tmp_path / "week.jsonl"
    assert run(smtpscope, "pcap", *CAPTURES, "--transcripts", transcripts).returncode == 0
    on_transcripts = run(smtpscope, "rules", "test", rules, "--against", transcripts)
    assert on_transcripts.returncode == 0, on_transcripts.stderr
    # Neither matched nor not: the transcript keeps no MIME-Version field and no text.
    assert "0 matched a rule" in on_transcripts.stdout
    assert "not judged" in on_transcripts.stdout
    assert '"body-mentions-test" [' in on_transcripts.stdout and '"has-mime-version" [' in on_transcripts.stdout
