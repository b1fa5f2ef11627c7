"""Hostile-input cases 25 and 26 (README, Security), capture side: `smtpscope pcap` on the hostile
fixtures that tools/make-hostile-pcaps writes with scapy (Tests/SMTPCaptureTests/Fixtures/hostile)."""
import base64
import json
import pathlib

import pytest

from security_support import anomaly_kinds

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "SMTPCaptureTests" / "Fixtures" / "hostile"
# The credentials tools/make-hostile-pcaps puts in plaintext-auth.pcap.
USER, PASSWORD = "alice@example.com", "hostile-Pa55word"


def only_record(smtpscope, name, validate_record):
    path = FIXTURES / name
    if not path.is_file():
        pytest.fail(f"{path} missing: run tools/make-hostile-pcaps")
    records = smtpscope.records(path)
    assert len(records) == 1, [r.get("session_id") for r in records]
    validate_record(records[0])
    return records[0]


def texts(record):
    return [event["text"] for event in record["events"]]


def test_row25_overlapping_segments_with_different_bytes_are_ambiguous(smtpscope, validate_record):
    record = only_record(smtpscope, "overlapping-retransmission.pcap", validate_record)
    assert "ambiguous_retransmission" in anomaly_kinds(record)
    # The session is still read to its end.
    assert "221 2.0.0 Bye" in texts(record)


def test_row25_a_capture_starting_mid_data_resynchronises_on_reply_lines(smtpscope, validate_record):
    record = only_record(smtpscope, "starts-mid-data.pcap", validate_record)
    assert record["outcome"] == "incomplete"
    assert "capture_gap" in anomaly_kinds(record)
    events = texts(record)
    # Nothing of the body is taken for a command; the dialogue resumes at the first reply line.
    assert not [t for t in events if "middle of a message" in t or "another body line" in t], events
    assert events[0] == "250 2.0.0 Ok: queued as 5DEF", events
    assert "MAIL FROM:<next@example.com>" in events and "221 2.0.0 Bye" in events


def test_row26_plaintext_after_the_220_to_starttls_is_a_stripped_starttls(smtpscope, validate_record):
    record = only_record(smtpscope, "starttls-plaintext-after-220.pcap", validate_record)
    assert "starttls_stripped" in anomaly_kinds(record), anomaly_kinds(record)
    assert "MAIL FROM:<a@example.com>" in texts(record)


def test_row26_client_bytes_after_starttls_in_the_same_segment(smtpscope, validate_record):
    record = only_record(smtpscope, "starttls-pipelined.pcap", validate_record)
    assert "plaintext_after_starttls" in anomaly_kinds(record)
    # The injected RSET is never read as a command.
    assert "RSET" not in texts(record)


def test_row26_plaintext_auth_is_recorded_with_credentials_redacted(smtpscope, validate_record):
    record = only_record(smtpscope, "plaintext-auth.pcap", validate_record)
    text = json.dumps(record)
    for secret in (PASSWORD, base64.b64encode(PASSWORD.encode()).decode(),
                   base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()):
        assert secret not in text, "a credential appears in the transcript"
    assert "AUTH PLAIN [redacted]" in texts(record)
    assert "LOGIN" in text
