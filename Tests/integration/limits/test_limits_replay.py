"""End-to-end: `rules test --against` and `pcap --rules` replay limits over a real capture.

tcpdump records swaks sending five messages from one sender (and one from another) straight to an
aiosmtpd server on loopback; the replay with a budget of 2 messages an hour says which sender it
would have stopped, how often and when, and the transcripts of `pcap --rules` carry the verdicts.
"""
import json

from proxy_support import swaks

RULES = """
limit "sender-hourly" counts messages per mail_from over 1h max 2

rule "throttle-sender" on mail
  when over_limit("sender-hourly")
  tempfail 451 4.7.1 "slow down"
"""


def test_replay_on_a_capture_names_the_stopped_sender(smtpscope, peers, capture, tmp_path):
    host, port = peers.aiosmtpd()
    with capture(port) as pcap:
        for sender in ["alice@example.com"] * 3 + ["bob@example.com"] + ["alice@example.com"] * 2:
            swaks(host, port, "--from", sender, "--to", "carol@example.org")
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "10-limits.rules").write_text(RULES)

    replay = smtpscope.run("rules", "test", rules, "--against", pcap)
    assert replay.returncode == 0, replay.stderr
    stops = [line.strip() for line in replay.stdout.splitlines() if line.strip().startswith("sender-hourly (")]
    assert len(stops) == 1, replay.stdout
    assert stops[0].startswith("sender-hourly (2 messages in 1h): mail_from alice@example.com: 3 refusals, from ")
    assert 'tempfail by "throttle-sender"' in stops[0]
    assert "bob@example.com" not in "\n".join(stops)

    transcripts = smtpscope.pcap(pcap, "--rules", rules)
    verdicts = [v for record in transcripts.records for t in record.get("transactions") or [] for v in t.get("rules") or []]
    assert len(verdicts) == 3
    assert all(v["enforced"] is False and v["mode"] == "enforce" for v in verdicts)
    assert all(v["detail"] == "451 4.7.1 slow down; mail_from alice@example.com reached sender-hourly: 2 messages in 1h"
               for v in verdicts), json.dumps(verdicts)
