"""Hostile-input cases 1-5 (README, Security): SMTP smuggling through the real proxy, against three
real upstreams.

Each case sends a carrier message whose content holds a fake end of data (bare LF, bare CR or NUL
around a dot) followed by a smuggled transaction P, then the real end of data. The oracle:
- the client gets `550 5.5.2`, and a well-formed message sent next in the same session is accepted;
- the upstream stores exactly that one well-formed message: never the carrier, never P;
- the transcript records the rejected transaction and the anomaly of the first forbidden octet.

The upstreams: Postfix's `smtp-sink -d` (dump files), the aiosmtpd recorder (upstream_peer.py) and
Debian's Postfix 3.7 with `smtpd_forbid_bare_newline = no`, the vulnerable server, which holds
every message it accepts. A control test sends a payload to that Postfix directly and sees it store
P: the oracle can fail.

Row 5 sends every case again with the TCP stream split at every offset around the fake end.
"""
import pytest

from proxy_support import RawClient, check_records
from security_support import (LEGIT, NO_RULES, SMUGGLED, SMUGGLING_CASES, anomaly_kinds, first_forbidden,
                              no_delay_client, open_transaction, send_legit, send_split, smuggling_payload,
                              start_upstream)

UPSTREAM_KINDS = ["smtp-sink", "aiosmtpd", "postfix"]
CASE_PARAMS = [pytest.param(terminator, id=f"row{row}-{name}") for row, name, terminator in SMUGGLING_CASES]


def assert_only_legit_stored(stored):
    messages = stored.messages(wait_for=1)
    # smtp-sink also dumps what it received of an aborted transaction; the carrier's first lines may
    # be there, but never its fake end nor anything after it.
    complete = [m for m in messages if b"LEGIT-BODY" in m or stored.kind != "smtp-sink"]
    assert len(complete) == 1, f"{stored.kind} stored {len(complete)} messages: {messages!r}"
    for message in messages:
        assert b"P-SMUGGLED-CONTENT" not in message, f"{stored.kind} stored the smuggled content: {message!r}"
        assert b"evil.test" not in message
        assert b"CARRIER-BODY" not in message, f"{stored.kind} stored the carrier: {message!r}"
    assert b"LEGIT-BODY" in complete[0]


def check_transcript(run, validate_record, terminator):
    [record] = run.records(1)
    check_records([record], validate_record)
    first, second = record["transactions"]
    assert first["outcome"] == "rejected"
    assert first["data"]["reply"]["code"] == 550
    assert second["outcome"] == "delivered"
    assert first_forbidden(terminator) in anomaly_kinds(record)
    assert "s@evil.test" not in [t["mail_from"]["address"] for t in record["transactions"]]
    return record


@pytest.mark.parametrize("kind", UPSTREAM_KINDS)
@pytest.mark.parametrize("terminator", CASE_PARAMS)
def test_smuggled_transaction_is_refused_and_never_stored(proxy, upstreams, postfixes, validate_record,
                                                          kind, terminator):
    stored = start_upstream(kind, upstreams, postfixes)
    run = proxy(stored.address, *NO_RULES)
    client = RawClient(run.host, run.port)
    try:
        open_transaction(client)
        code, lines = client.command(smuggling_payload(terminator))
        assert code == 550 and lines[0].startswith("550 5.5.2"), lines
        send_legit(client)
        assert client.command("QUIT\r\n")[0] == 221
    finally:
        client.close()
    assert_only_legit_stored(stored)
    check_transcript(run, validate_record, terminator)


def test_control_the_lenient_postfix_stores_the_smuggled_message_when_reached_directly(postfixes):
    """Without the proxy, Postfix 3.7 with smtpd_forbid_bare_newline = no ends the message at
    `<LF>.<CR><LF>` and runs P as a second transaction: the oracle above detects smuggling."""
    stored = start_upstream("postfix", None, postfixes)
    client = RawClient(*stored.address)
    try:
        open_transaction(client)
        client.send(smuggling_payload(b"\n.\r\n"))
        codes = [client.reply()[0] for _ in range(4)]
        assert codes == [250, 250, 250, 354], codes
        assert client.command(b".\r\n")[0] == 250
    finally:
        client.close()
    messages = stored.messages(wait_for=2)
    assert len(messages) == 2
    assert any(b"P-SMUGGLED-CONTENT" in m for m in messages)


def split_region(payload, terminator):
    """Offsets around the fake end: from a few octets before it to a few octets into P."""
    start = len(payload) - len(SMUGGLED) - len(b".\r\n") - len(terminator)
    return range(max(0, start - 3), min(len(payload), start + len(terminator) + 8))


@pytest.mark.parametrize("terminator", CASE_PARAMS)
def test_row5_every_split_of_the_stream_gives_the_same_outcome(proxy, upstreams, validate_record, terminator):
    stored = start_upstream("aiosmtpd", upstreams, None)
    run = proxy(stored.address, *NO_RULES)
    payload = smuggling_payload(terminator)
    offsets = list(split_region(payload, terminator))
    for offset in offsets:
        client = no_delay_client(run.host, run.port)
        try:
            open_transaction(client)
            send_split(client, payload, offset)
            code, lines = client.reply()
            assert code == 550 and lines[0].startswith("550 5.5.2"), (offset, lines)
            assert client.command("QUIT\r\n")[0] == 221, offset
        finally:
            client.close()
    # One last session proves the upstream still works, and is the only message it ever stored.
    client = RawClient(run.host, run.port)
    try:
        open_transaction(client)
        assert client.command(LEGIT + b".\r\n")[0] == 250
        assert client.command("QUIT\r\n")[0] == 221
    finally:
        client.close()
    messages = stored.messages(wait_for=1)
    assert len(messages) == 1 and b"LEGIT-BODY" in messages[0], messages
    records = run.records(len(offsets) + 1)
    check_records(records, validate_record, count=len(offsets) + 1)
    expected = first_forbidden(terminator)
    for record in records:
        [transaction] = record["transactions"]
        if transaction["outcome"] == "delivered":
            continue
        assert transaction["outcome"] == "rejected", record["session_id"]
        assert transaction["data"]["reply"]["code"] == 550
        assert expected in anomaly_kinds(record), (record["session_id"], anomaly_kinds(record))
    assert sum(1 for r in records if r["transactions"][0]["outcome"] == "rejected") == len(offsets)
