"""`smtpscope pcap` against other projects' expected outputs for the shipped corpus.

Every capture under Tests/SMTPCaptureTests/Fixtures/corpus is read, and wherever our fields overlap
with what Zeek (smtp.log, weird.log, files.log, `out` transcripts), Suricata (suricata-verify
test.yaml checks on eve.json), Arkime (.test session documents) or nDPI (.pcap.out flow lines)
expect, the values must agree. Each comparison is its own test case, named after the source and the
fact compared. Where the other tool is wrong, or its semantics differ from smtpscope's, the case says
so with the evidence (and SOURCES.md, next to the captures, gives the provenance of every file).
"""
import email.utils
import functools
import json
import pathlib
import re
import subprocess

import pytest
import yaml

from integration_support import CORPUS, find_binary, known_difference, load_schema, parse_jsonl

ZEEK = CORPUS / "zeek"
ZEEK_EXPECTED = ZEEK / "expected"
SURICATA = CORPUS / "suricata-verify"
ARKIME = CORPUS / "arkime"
NDPI = CORPUS / "ndpi"

ADDRESS = re.compile(r"[^\s<>,\"():;\[\]]+@[^\s<>,\"():;\[\]]+")

# --------------------------------------------------------------------------------------------------
# Running smtpscope once per capture


def all_captures():
    return sorted(p for p in CORPUS.rglob("*") if p.suffix in (".pcap", ".pcapng") or p.name.endswith(".pcap.gz"))


@functools.lru_cache(maxsize=None)
def _run(capture, extra_args):
    path, _ = find_binary()
    completed = subprocess.run([str(path), "pcap", str(capture), *extra_args],
                               capture_output=True, text=True, timeout=300)
    return completed


@pytest.fixture
def run(smtpscope):
    """run(capture, *args) -> records; the first call per capture runs smtpscope, later ones reuse it."""
    def records(capture, *extra_args):
        completed = _run(pathlib.Path(capture), tuple(extra_args))
        assert completed.returncode == 0, f"smtpscope pcap {capture} exited {completed.returncode}: {completed.stderr}"
        return parse_jsonl(completed.stdout)
    return records


def session(records, client=None, server=None):
    """The session between these endpoints ((ip, port) tuples; either may be None)."""
    found = [r for r in records
             if (client is None or (r["client"]["ip"], r["client"]["port"]) == client)
             and (server is None or (r["server"]["ip"], r["server"]["port"]) == server)]
    assert len(found) == 1, f"expected one session {client} -> {server}, found {len(found)} among " \
        f"{[(r['client'], r['server']) for r in records]}"
    return found[0]


def addresses(values):
    """Lower-cased addr-specs found in header values or envelope strings."""
    if values is None:
        return set()
    if isinstance(values, str):
        values = [values]
    found = set()
    for value in values:
        found |= {a.lower().strip(".") for a in ADDRESS.findall(value)}
    return found


def render_reply(reply):
    if reply is None:
        return None
    parts = [str(reply["code"])]
    if reply.get("enhanced"):
        parts.append(reply["enhanced"])
    if reply["text"]:
        parts.append(reply["text"].split("\n")[-1])
    return " ".join(parts)


def reply_matches(reply, expected):
    """Compares our reply with another tool's 'CODE [X.Y.Z] text' string (last line for multi-line)."""
    if reply is None:
        return False
    rendered = render_reply(reply)
    plain = f"{reply['code']} {reply['text'].split(chr(10))[-1]}".strip()
    return expected in (rendered, plain)


def server_lines(record):
    return [e["text"] for e in record["events"] if e["from"] == "server"]


def client_commands(record):
    return [e["text"] for e in record["events"] if e["from"] == "client" and e.get("octets") is None]


def same_date(ours, theirs):
    if ours == theirs:
        return True
    try:
        return email.utils.parsedate_to_datetime(theirs) == email.utils.parsedate_to_datetime(ours)
    except (TypeError, ValueError):
        pass
    try:
        import datetime
        return datetime.datetime.fromisoformat(ours.replace("Z", "+00:00")) == email.utils.parsedate_to_datetime(theirs)
    except (TypeError, ValueError, AttributeError):
        return False


# --------------------------------------------------------------------------------------------------
# Every capture: runs, and validates against the schema


@pytest.mark.parametrize("capture", all_captures(), ids=lambda p: str(p.relative_to(CORPUS)))
def test_every_capture_is_read_and_validates(run, validate_record, capture):
    records = run(capture)
    assert records, f"no session found in {capture.name}"
    for record in records:
        validate_record(record)
        assert record["schema"] == "smtpscope.session/1"
        assert record["source"] == "pcap"
        assert record["start"] <= (record["end"] or record["start"])
    assert len({r["session_id"] for r in records}) == len(records), "session ids must be unique"


# --------------------------------------------------------------------------------------------------
# Zeek


def zeek_log(path):
    """Rows of a Zeek ASCII log as dicts; '-' is None, '(empty)' an empty list for set/vector fields."""
    fields, types, rows = None, None, []
    for line in path.read_text().splitlines():
        if line.startswith("#fields"):
            fields = line.split("\t")[1:]
        elif line.startswith("#types"):
            types = line.split("\t")[1:]
        elif line.startswith("#") or not line.strip():
            continue
        elif fields is None and line.startswith("ts\t"):
            fields = line.split("\t")  # weird.log of address-limits lost its '#fields' marker
        elif fields:
            row = {}
            for index, (name, value) in enumerate(zip(fields, line.split("\t"))):
                kind = types[index] if types else "string"
                if value == "-":
                    row[name] = None
                elif value == "(empty)":
                    row[name] = []
                elif kind.startswith(("set[", "vector[")):
                    row[name] = value.split(",")
                else:
                    row[name] = value
            rows.append(row)
    return rows


ZEEK_SMTP_LOGS = {
    "smtp.basic": "smtp.pcap",
    "smtp.attachment": "smtp.pcap",
    "smtp.attachment-msg": "smtp-attachment-msg.pcap",
    "smtp.one-side": "smtp-one-side-only.pcap",
    "smtp.mail-transactions-invalid": "smtp-mail-transactions-invalid.pcap",
    "smtp.starttls": "smtp-starttls.pcap",
    "smtp.bdat": "rfc3030-bdat-example1.pcap",
    "smtp.bdat-multipart-chunked": "rfc3030-bdat-multipart-chunked.pcap",
    "smtp.bdat-gap": "smtp-bdat-gap.pcap",
    "smtp.bdat-pipeline-8bitmime": "smtp-bdat-pipeline-8bitmime.pcap",
    "smtp.bdat-cmd-invalid": "smtp-bdat-cmd-invalid.pcapng",
}


def zeek_cases():
    for test_name, capture in ZEEK_SMTP_LOGS.items():
        rows = zeek_log(ZEEK_EXPECTED / test_name / "smtp.log")
        for index, row in enumerate(rows):
            for fact in ("helo", "envelope", "last_reply", "headers", "tls"):
                yield pytest.param(capture, row, fact, id=f"{test_name}-row{index + 1}-{fact}")


def zeek_session(records, row):
    return session(records, (row["id.orig_h"], int(row["id.orig_p"])), (row["id.resp_h"], int(row["id.resp_p"])))


def zeek_transaction(record, row, rows_in_session):
    """Our transaction for a Zeek row.

    Zeek starts a row at MAIL, RCPT or DATA, whichever comes first after the previous end of data,
    and logs it at the next end of data or reset. smtpscope's transactions start at an accepted MAIL
    (RFC 5321 §3.3). They agree on rows that delivered a message (2xx last reply) or whose replies
    were not captured; Zeek's rows for out-of-sequence commands (no mailfrom or no rcptto) are not
    transactions in the RFC's sense and are checked against the session's replies instead.
    """
    if row["last_reply"] is None:
        candidates = [t for t in record["transactions"] if t["outcome"] == "unknown"]
        peers = [r for r in rows_in_session if r["last_reply"] is None]
    elif row["last_reply"].startswith("2"):
        candidates = [t for t in record["transactions"] if t["outcome"] == "delivered"]
        peers = [r for r in rows_in_session if r["last_reply"] and r["last_reply"].startswith("2")]
    else:
        candidates = [t for t in record["transactions"] if t["outcome"] != "delivered"]
        peers = [r for r in rows_in_session if r["last_reply"] and not r["last_reply"].startswith("2")]
    position = next(i for i, r in enumerate(peers) if r == row)
    assert len(candidates) == len(peers), \
        f"Zeek has {len(peers)} such transactions here, smtpscope has {len(candidates)}: {candidates}"
    return candidates[position]


@pytest.mark.parametrize(("capture", "row", "fact"), list(zeek_cases()))
def test_zeek_smtp_log(request, run, capture, row, fact):
    records = run(ZEEK / capture)
    record = zeek_session(records, row)
    rows_in_session = [r for r in zeek_log(ZEEK_EXPECTED / _test_for(row, capture) / "smtp.log")
                       if r["uid"] == row["uid"]]
    out_of_sequence = row["mailfrom"] is None or row["rcptto"] in (None, [])
    session_level = row["mailfrom"] is None and row["rcptto"] is None

    if fact == "helo":
        assert record["helo"]["name"] == row["helo"]
    elif fact == "tls":
        if row["tls"] == "T":
            assert record["tls"]["mode"] == "starttls"
        else:
            assert record["tls"]["mode"] == "none"
    elif session_level:
        # A session without a mail transaction (e.g. STARTTLS, then encrypted): Zeek still logs a row.
        if fact == "last_reply":
            assert any(row["last_reply"] in line or row["last_reply"][4:] in line for line in server_lines(record))
        else:
            assert record["transactions"] == []
    elif (out_of_sequence and row["last_reply"] and not row["last_reply"].startswith("2")
          and fact == "last_reply"):
        assert any(row["last_reply"] in line or row["last_reply"][4:] in line for line in server_lines(record)), \
            f"the reply {row['last_reply']!r} should be among the session's events"
    else:
        if out_of_sequence and row["last_reply"] and not row["last_reply"].startswith("2"):
            known_difference(request, "Zeek logs a row for out-of-sequence commands (RCPT without MAIL, DATA "
                             "without RCPT); they open no transaction in smtpscope (RFC 5321 §3.3), so only "
                             "the reply matches")
        transaction = zeek_transaction(record, row, [r for r in rows_in_session])
        if fact == "envelope":
            assert transaction["mail_from"]["address"].lower() == row["mailfrom"].lower()
            accepted = [r["address"].lower() for r in transaction["rcpt_to"]
                        if r["reply"] is None or r["reply"]["code"] < 400]
            assert sorted(accepted) == sorted(a.lower() for a in row["rcptto"])
        elif fact == "last_reply":
            if row["last_reply"] is None:
                assert transaction["data"] is None or transaction["data"]["reply"] is None
                assert transaction["outcome"] == "unknown"
            elif row["last_reply"].startswith("2"):
                assert reply_matches(transaction["data"]["reply"], row["last_reply"]), \
                    f"{render_reply(transaction['data']['reply'])!r} != {row['last_reply']!r}"
            else:
                # A rejection of the DATA/BDAT command or of the message: it is the transaction's
                # last reply in both tools.
                data = transaction.get("data") or {}
                replies = [data.get("reply"), data.get("initial_reply")] + \
                          [r["reply"] for r in transaction["rcpt_to"]] + [transaction["mail_from"]["reply"]]
                assert any(reply_matches(r, row["last_reply"]) for r in replies if r) or \
                    any(row["last_reply"] in line for line in server_lines(record))
                assert transaction["outcome"] == ("rejected" if row["last_reply"].startswith("5") else "tempfailed")
        elif fact == "headers":
            message = transaction["message"]
            if str(capture).endswith("smtp-bdat-gap.pcap"):
                known_difference(request, "after the 1000-octet gap the client sends DATA and a whole message "
                                 "that the server queues (250 OK: message queued); smtpscope reads its headers "
                                 "(Subject: Test), while Zeek's row for the BDAT transfer, cut by the gap, has none")
            if all(row[k] is None for k in ("subject", "from", "to", "msg_id", "date")):
                assert message is None or message["subject"] is None
                return
            assert message is not None, "Zeek saw a message here"
            assert message["subject"] == row["subject"]
            assert message["message_id"] == row["msg_id"]
            assert addresses(message["from"]) == addresses(row["from"])
            assert addresses(message["to"]) == addresses(",".join(row["to"] or []))
            assert addresses(message["cc"]) == addresses(",".join(row["cc"] or []))
            if row["date"] is not None:
                assert message["date"] is not None and same_date(message["date"], row["date"])


def _test_for(row, capture):
    # The Zeek test that produced a row: the first test name mapped to this capture whose log holds it.
    for test_name, mapped in ZEEK_SMTP_LOGS.items():
        if mapped == capture and any(r["uid"] == row["uid"] for r in zeek_log(ZEEK_EXPECTED / test_name / "smtp.log")):
            return test_name
    raise AssertionError("row not found")


# Zeek `out` files of request transcripts: "uid, T, VERB, ARG" per smtp_request.
ZEEK_REQUEST_TRANSCRIPTS = {
    "smtp.bdat": "rfc3030-bdat-example1.pcap",
    "smtp.bdat-multipart-chunked": "rfc3030-bdat-multipart-chunked.pcap",
    "smtp.bdat-pipeline-8bitmime": "smtp-bdat-pipeline-8bitmime.pcap",
    "smtp.bdat-gap": "smtp-bdat-gap.pcap",
    "smtp.bdat-cmd-invalid": "smtp-bdat-cmd-invalid.pcapng",
}


def zeek_requests(path):
    requests = {}
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            continue
        parts = line.split(", ", 4)
        if parts[0] == "smtp_request":
            parts = parts[1:]
        elif parts[0] == "smtp_reply":
            continue
        uid, _, verb, *argument = parts
        requests.setdefault(uid, []).append((verb, argument[0] if argument else ""))
    return requests


@pytest.mark.parametrize(("test_name", "capture"), ZEEK_REQUEST_TRANSCRIPTS.items(),
                         ids=list(ZEEK_REQUEST_TRANSCRIPTS))
def test_zeek_request_transcript(run, test_name, capture):
    records = run(ZEEK / capture)
    expected_sessions = list(zeek_requests(ZEEK_EXPECTED / test_name / "out").values())
    assert len(records) == len(expected_sessions)
    ordered = sorted(records, key=lambda r: r["start"])
    for record, requests in zip(ordered, expected_sessions):
        # Zeek's "." is its end-of-data marker and "(UNKNOWN)" the bytes it could not parse after a
        # gap; smtpscope records message content as one event per DATA/BDAT instead.
        expected = [f"{verb} {argument}".strip() for verb, argument in requests if verb not in (".", "(UNKNOWN)")]
        ours = [line for line in client_commands(record) if line != "."]
        assert [line.upper() for line in ours] == [line.upper() for line in expected]


# Zeek weird.log names mapped to smtpscope anomalies, or the reason there is no mapping.
ZEEK_WEIRDS = {
    "smtp.bdat-gap": ("smtp-bdat-gap.pcap", {
        "smtp_bdat_remaining_at_end_data": "capture_gap",
        "smtp_bdat_undelivered_at_done": "capture_gap",
    }),
    "smtp.mail-transactions-invalid": ("smtp-mail-transactions-invalid.pcap", {
        "smtp_mail_transaction_invalid": "reply:503 sender not yet given",
    }),
    "smtp.bdat-cmd-invalid": ("smtp-bdat-cmd-invalid.pcapng", {
        "smtp_invalid_bdat_command": "reply:521 5.5.4 Syntax: BDAT count [LAST]",
    }),
    "smtp.address-limits": ("smtp-many-addresses.pcap.gz", {
        "smtp_too_many_rcptto_addresses": None,
        "smtp_max_path_length_exceeded": None,
        "smtp_too_many_to_addresses": None,
        "smtp_too_many_cc_addresses": None,
        "log_container_field_truncated": None,
    }),
}


def weird_cases():
    for test_name, (capture, mapping) in ZEEK_WEIRDS.items():
        for index, row in enumerate(zeek_log(ZEEK_EXPECTED / test_name / "weird.log")):
            yield pytest.param(capture, row, mapping.get(row["name"], None), id=f"{test_name}-{index + 1}-{row['name']}")


@pytest.mark.parametrize(("capture", "row", "ours"), list(weird_cases()))
def test_zeek_weird(request, run, capture, row, ours):
    if ours is None:
        known_difference(request, f"{row['name']}: Zeek's test lowers its own address limits to 500 (see "
                         "output); smtpscope's defaults (1000 recipients) keep all 600, checked by "
                         "test_zeek_many_addresses_are_all_kept")
    records = run(ZEEK / capture)
    if row["id.orig_h"] is not None:
        record = zeek_session(records, row)
    else:
        record = records[0]
    if ours.startswith("reply:"):
        # Zeek flags the client's out-of-sequence command; smtpscope records the server's answer to it
        # (the server's reply decides what happened).
        expected = ours[len("reply:"):]
        assert any(expected in line or expected[4:] in line for line in server_lines(record))
    else:
        assert ours in [a["kind"] for a in record["anomalies"]]


def test_zeek_many_addresses_are_all_kept(run):
    record = run(ZEEK / "smtp-many-addresses.pcap.gz")[0]
    transaction = record["transactions"][0]
    assert len(transaction["rcpt_to"]) == 600
    assert transaction["outcome"] == "delivered"
    # The To and Cc header fields of this message fill more than the 100 KiB header-section limit
    # (Postfix's header_size_limit), so the message summary keeps the fields before the limit and
    # says so; Zeek's own 500-address cap is a setting of its test. Every envelope recipient is kept.
    assert len(transaction["message"]["to"]) >= 300
    assert any(a["kind"] == "header_section_too_large" for a in record["anomalies"])


# files.log / files.cut: attachments and whole-message sizes.
ZEEK_FILES = [
    ("smtp.attachment", "smtp.pcap", "files.log"),
    ("smtp.bdat-multipart-chunked", "rfc3030-bdat-multipart-chunked.pcap", "files.log.cut"),
]


@pytest.mark.parametrize(("test_name", "capture", "log"), ZEEK_FILES, ids=[c[0] for c in ZEEK_FILES])
def test_zeek_attachment_names(run, test_name, capture, log):
    rows = zeek_log(ZEEK_EXPECTED / test_name / log) if log == "files.log" else _cut(ZEEK_EXPECTED / test_name / log)
    expected = sorted((r["filename"], r["mime_type"]) for r in rows if r.get("filename"))
    records = run(ZEEK / capture)
    ours = sorted((a["filename"], a["content_type"]) for r in records for t in r["transactions"]
                  if t["message"] for a in t["message"]["attachments"] if a["filename"])
    assert ours == expected


def _cut(path):
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    header = lines[0].split("\t")
    return [{k: (None if v == "-" else v) for k, v in zip(header, line.split("\t"))} for line in lines[1:]]


ZEEK_WHOLE_MESSAGES = [
    ("smtp.rfc822-msg-file-analysis-multi-mail", "smtp-bdat-pipeline-8bitmime.pcap"),
    ("smtp.rfc822-msg-file-analysis-multi-session", "smtp.pcap"),
]


@pytest.mark.parametrize(("test_name", "capture"), ZEEK_WHOLE_MESSAGES, ids=[c[0] for c in ZEEK_WHOLE_MESSAGES])
def test_zeek_whole_message_sizes(run, test_name, capture):
    expected = sorted(int(r["seen_bytes"]) for r in _cut(ZEEK_EXPECTED / test_name / "files.cut")
                      if r["mime_type"] == "message/rfc822")
    records = run(ZEEK / capture)
    ours = sorted(t["message"]["size"] for r in records for t in r["transactions"] if t["message"])
    assert ours == expected


def test_zeek_starttls_ssl_log(run):
    row = zeek_log(ZEEK_EXPECTED / "smtp.starttls" / "ssl.log")[0]
    record = zeek_session(run(ZEEK / "smtp-starttls.pcap"), row)
    assert record["tls"]["mode"] == "starttls"
    assert record["tls"]["established"] is (row["established"] == "T")
    assert record["tls"]["version"] == {"TLSv12": "TLSv1.2", "TLSv13": "TLSv1.3"}[row["version"]]
    assert record["tls"]["cipher"] == row["cipher"]
    assert record["tls"]["sni"] == row["server_name"]


def test_zeek_intel_seen_addresses(run):
    rows = zeek_log(ZEEK_EXPECTED / "intel.seen.smtp" / "intel.log")
    record = zeek_session(run(ZEEK / "smtp-multi-addr.pcap"), rows[0])
    transaction = record["transactions"][0]
    where = {"SMTP::IN_RCPT_TO": {r["address"].lower() for r in transaction["rcpt_to"]},
             "SMTP::IN_FROM": addresses(transaction["message"]["from"]),
             "SMTP::IN_TO": addresses(transaction["message"]["to"])}
    for row in rows:
        assert row["seen.indicator"].lower() in where[row["seen.where"]], row["seen.indicator"]
    # The server ended the session with 451 4.7.0 after the message was queued (250 2.6.0).
    assert transaction["outcome"] == "delivered"
    assert any("451" in line and "4.7.0" in line for line in server_lines(record))


# --------------------------------------------------------------------------------------------------
# Suricata (suricata-verify test.yaml checks, evaluated against eve-like events made from our records)

SURICATA_VERSION = (8, 0, 7)  # the behaviour emulated; checks for older versions are skipped


def version_ok(requires):
    if not requires:
        return True

    def parse(value):
        return tuple(int(x) for x in str(value).split("."))

    for key, value in requires.items():
        wanted = parse(value)
        ours = SURICATA_VERSION[:len(wanted)]
        if key == "min-version" and ours < wanted:
            return False
        if key == "lt-version" and SURICATA_VERSION >= wanted + (0,) * (3 - len(wanted)):
            return False
        if key == "version" and ours != wanted:
            return False
    return True


def bracket(address):
    return None if address is None else f"<{address}>"


def eve_events(records):
    """smtp, fileinfo and anomaly events as Suricata would log them, from our session records.

    One `smtp` event per transaction (Suricata's tx), or one with only smtp.helo for a session without
    transactions. One `fileinfo` per named attachment. Anomalies keep our kinds (mapped below).
    """
    events = []
    for record in records:
        base = {"app_proto": "smtp", "src_ip": record["client"]["ip"], "src_port": record["client"]["port"],
                "dest_ip": record["server"]["ip"], "dest_port": record["server"]["port"], "proto": "TCP"}
        helo = (record.get("helo") or {}).get("name")
        if not record["transactions"]:
            events.append({**base, "event_type": "smtp", "tx_id": 0, "smtp.helo": helo})
        for tx_id, transaction in enumerate(record["transactions"]):
            event = {**base, "event_type": "smtp", "tx_id": tx_id, "smtp.helo": helo,
                     "smtp.mail_from": bracket((transaction["mail_from"] or {}).get("address"))}
            for index, rcpt in enumerate(transaction["rcpt_to"]):
                event[f"smtp.rcpt_to[{index}]"] = bracket(rcpt["address"])
            message = transaction["message"]
            if message:
                event["email"] = True
                event["email.from"] = message["from"]
                for index, value in enumerate(message["to"]):
                    event[f"email.to[{index}]"] = value
                named = [a for a in message["attachments"] if a["filename"]]
                for index, attachment in enumerate(named):
                    event[f"email.attachment[{index}]"] = attachment["filename"]
                for attachment in named:
                    events.append({**event, "event_type": "fileinfo", "app_proto": "smtp",
                                   "fileinfo.filename": attachment["filename"],
                                   "fileinfo.size": attachment["size"]})
            events.append(event)
        for anomaly in record["anomalies"]:
            events.append({**base, "event_type": "anomaly", "anomaly.app_proto": "smtp", "ours": anomaly["kind"]})
    return events


# Suricata anomaly events and the smtpscope anomaly kinds that report the same fact.
SURICATA_ANOMALIES = {
    "TRUNCATED_LINE": "overlong_line",
    "MIME_LONG_LINE": "overlong_line",
}
# Match keys compared; every other key (pcap_cnt, flow counters, email.status, md5s...) is Suricata
# bookkeeping with no smtpscope field.
ADDRESS_KEYS = ("email.from", "email.to[")
SUPPORTED_PREFIXES = ("event_type", "src_ip", "src_port", "dest_ip", "dest_port", "smtp.", "email.from",
                      "email.to[", "email.attachment[", "fileinfo.filename", "fileinfo.size", "app_proto",
                      "anomaly.event", "anomaly.app_proto", "tx_id", "not-has-key", "proto")

# Checks whose semantics differ, with the evidence.
SURICATA_DIFFERENCES = {
    ("smtp-ehlo-reset-after-rejected-data", 0):
        "Suricata opens tx 0 for the `data` command that got 503 before any MAIL; smtpscope's transactions "
        "start at MAIL (RFC 5321 §3.3), so it has 1 transaction (checked by test_suricata_rejected_data_without_mail)",
    ("smtp-ehlo-reset-after-rejected-data", 1):
        "tx 0 is Suricata's transaction for the rejected `data` (see check 0)",
    ("smtp-ehlo-reset-after-rejected-data", 2):
        "tx_id 1 is Suricata's numbering (its tx 0 is the rejected `data`); smtpscope's one transaction, "
        "bob@example.com -> alice@example.com delivered, is checked by test_suricata_rejected_data_without_mail",
    ("smtp-ehlo-reset-after-rejected-data", 3):
        "DATA_COMMAND_REJECTED and DUPLICATE_FIELDS are Suricata parser events; the 503 is a server reply, "
        "not an anomaly, in smtpscope",
    ("smtp-ehlo-reset-after-rejected-data", 4): "see check 3",
    ("smtp-ehlo-reset-after-rejected-data", 5):
        "DUPLICATE_FIELDS: Suricata's tx 0 and tx 1 both carry a HELO; smtpscope keeps the latest",
    ("smtp-bdat-bad-tail-reply-queue", 2):
        "INVALID_BDAT: smtpscope records the server's 501 to `BDAT 5 X` (checked by "
        "test_suricata_bad_bdat_reply_queue) rather than its own judgement of the command",
    ("smtp-bdat-bad-tail-reply-queue", 3): "see check 2",
    ("smtp-long-DATA-line", 1):
        "MIME_LONG_ENC_LINE is a second Suricata event for the same long line inside base64; smtpscope "
        "reports one overlong_line",
    ("smtp-data-rejected", 0): "fileinfo.sha256 of the attachment: smtpscope hashes whole messages only",
    ("smtp-data-rejected", 1): "email.received needs a custom suricata.yaml (not copied); no smtpscope field",
}


def suricata_checks():
    for test_file in sorted(SURICATA.rglob("*.yaml")):
        directory = test_file.parent.name
        document = yaml.safe_load(test_file.read_text())
        if test_file.name == "bug-3616-smtp.test.yaml":
            continue  # only rule alerts, and the rules were not copied
        if not version_ok(document.get("requires")):
            continue
        capture = test_file.parent / (document.get("pcap") or "input.pcap")
        if not capture.exists():
            capture = next(test_file.parent.glob("*.pcap"))
        capture = capture.resolve()
        name = test_file.stem if test_file.name != "test.yaml" else directory
        for index, check in enumerate(document.get("checks", [])):
            if "filter" not in check:
                continue
            check = check["filter"]
            if not version_ok(check.get("requires")):
                continue
            event_type = check.get("match", {}).get("event_type")
            if event_type not in (None, "smtp", "fileinfo", "anomaly"):
                continue  # flow, alert, frame and stats events have no smtpscope counterpart
            key = (directory if test_file.name == "test.yaml" else name.replace(".test", ""), index)
            yield pytest.param(capture, check, SURICATA_DIFFERENCES.get(key), id=f"{key[0]}-check{index}")


def value_matches(key, expected, actual):
    if key.startswith(ADDRESS_KEYS):
        return addresses(expected) == addresses(actual) and bool(addresses(expected))
    if isinstance(expected, str) and key == "smtp.helo" and isinstance(actual, str) and len(expected) > 100:
        # Suricata truncates long lines at 4096 octets; compare the prefix it kept.
        return actual.startswith(expected) or expected.startswith(actual)
    return expected == actual


@pytest.mark.parametrize(("capture", "check", "difference"), list(suricata_checks()))
def test_suricata_verify(request, run, capture, check, difference):
    if difference:
        known_difference(request, difference)
    match = dict(check.get("match", {}))
    not_has = match.pop("not-has-key", [])
    if isinstance(not_has, str):
        not_has = [not_has]
    anomaly = match.pop("anomaly.event", None)
    # A known difference is checked on every key Suricata matches, the one that differs included.
    compared = {k: v for k, v in match.items() if difference or k.startswith(SUPPORTED_PREFIXES)}
    if anomaly is not None and anomaly not in SURICATA_ANOMALIES:
        known_difference(request, f"anomaly {anomaly}: Suricata's parser judgement, no smtpscope anomaly; the "
                         "same facts are checked by the dedicated test_suricata_* tests")
        assert anomaly in SURICATA_ANOMALIES, f"no smtpscope anomaly stands for Suricata's {anomaly}"
    events = eve_events(run(capture))

    def matches(event):
        if anomaly is not None and event.get("ours") != SURICATA_ANOMALIES[anomaly]:
            return False
        if any(key in event for key in not_has):
            return False
        return all(key in event and value_matches(key, value, event[key]) for key, value in compared.items())

    found = [e for e in events if matches(e)]
    if anomaly is not None:
        # One long line may give Suricata one event while we report it once per session: at least one.
        assert (len(found) >= 1) == (check["count"] >= 1), f"{anomaly}: {[e.get('ours') for e in events]}"
    else:
        assert len(found) == check["count"], \
            f"{len(found)} events match {compared} (not {not_has}); ours: {[e for e in events if e['event_type'] != 'anomaly']}"


def test_suricata_rejected_data_without_mail(run):
    record = run(SURICATA / "smtp-ehlo-reset-after-rejected-data" / "input.pcap")[0]
    assert record["helo"]["name"] == "client.example.com"
    assert any(line.startswith("503") and "5.5.1" in line for line in server_lines(record))
    transaction = record["transactions"][-1]
    assert transaction["mail_from"]["address"] == "bob@example.com"
    assert transaction["outcome"] == "delivered"


def test_suricata_bad_bdat_reply_queue(run):
    record = run(SURICATA / "smtp-bdat-bad-tail-reply-queue" / "input.pcap")[0]
    assert any(line.startswith("501") for line in server_lines(record))
    transaction = record["transactions"][-1]
    # The 501 belongs to `BDAT 5 X`; MAIL, RCPT and DATA keep their own replies (no shifted queue).
    assert transaction["mail_from"]["reply"]["code"] == 250
    assert transaction["rcpt_to"][0]["reply"]["code"] == 250
    assert transaction["data"]["command"] == "DATA"
    assert transaction["data"]["reply"]["code"] == 250
    assert transaction["outcome"] == "delivered"
    # The server did not advertise PIPELINING, and the client pipelined anyway.
    assert "pipelining_not_advertised" in [a["kind"] for a in record["anomalies"]]


def test_suricata_errors_invalid_replies(run):
    """smtp-errors: Suricata flags INVALID_REPLY in four sessions; smtpscope keeps what it saw."""
    records = run(SURICATA / "smtp-errors" / "smtperr.pcap")
    by_port = {r["client"]["port"]: r for r in records}
    # 49740: pipelined MAIL/RCPT/DATA answered with 472 (not an RFC 5321 code, kept as sent).
    assert any(line.startswith("472") for line in server_lines(by_port[49740]))
    # 49274: binary junk answered with 500 5.5.1 several times.
    assert sum(line.startswith("500") for line in server_lines(by_port[49274])) >= 5
    # 49448: a reply line without a numeric code ("4.7.0 [IPTS04] ..."): not a valid reply.
    assert {"unparsed_bytes", "reply_without_command"} & {a["kind"] for a in by_port[49448]["anomalies"]}
    # 50649: a TLS ClientHello sent to a plaintext server on port 465 is answered 4xx.
    assert by_port[50649]["server"]["port"] == 465
    assert any(line.startswith(("400", "402")) for line in server_lines(by_port[50649]))


def test_suricata_tls_protodetect(run):
    """The client starts TLS at once on 465 while the server greets in plain SMTP (Suricata: app_proto
    tls to server, smtp to client)."""
    record = run(SURICATA / "smtp-tls-protodetect" / "input.pcap")[0]
    assert record["server"]["port"] == 465
    # Seven packets: no handshake can have completed.
    assert record["tls"]["established"] is not True


# --------------------------------------------------------------------------------------------------
# Arkime (.test session documents)


def arkime_sessions():
    for test_file in sorted(ARKIME.glob("*.test")):
        for index, document in enumerate(json.loads(test_file.read_text())["sessions3"]):
            body = document["body"]
            for fact in ("hello", "envelope", "subject", "filenames", "statuscode", "auth", "starttls"):
                yield pytest.param(test_file.with_suffix(".pcap"), body, fact,
                                   id=f"{test_file.stem}-{index + 1}-{fact}")


def arkime_record(records, body):
    return session(records, (body["source"]["ip"], body["source"]["port"]))


@pytest.mark.parametrize(("capture", "body", "fact"), list(arkime_sessions()))
def test_arkime(request, run, capture, body, fact):
    # socks5-smtp-503: SMTP runs inside a SOCKS5 tunnel on port 1080, outside the SMTP ports, so
    # smtpscope looks for SMTP's start (a 220 greeting after the 10-octet SOCKS reply) within the
    # first 4 KiB and records the SOCKS handshake as unparsed bytes.
    record = arkime_record(run(capture), body)
    email = body.get("email", {})
    tags = body.get("tags", [])
    messages = [t["message"] for t in record["transactions"] if t["message"]]
    if fact == "hello":
        # Arkime lower-cases the HELO name (its smtpHello field is indexed lower-case); smtpscope
        # keeps it as sent.
        assert [record["helo"]["name"].lower()] == [h.lower() for h in email.get("smtpHello")]
    elif fact == "envelope":
        if "src" not in email:
            assert record["transactions"] == []
            return
        assert {t["mail_from"]["address"].lower() for t in record["transactions"]} == {a.lower() for a in email["src"]}
        assert {r["address"].lower() for t in record["transactions"] for r in t["rcpt_to"]} == \
            {a.lower() for a in email["dst"]}
    elif fact == "subject":
        assert [m["subject"] for m in messages if m["subject"] is not None] == email.get("subject", [])
        assert [m["message_id"].strip("<>") for m in messages if m["message_id"]] == email.get("id", [])
    elif fact == "filenames":
        ours = sorted(a["filename"] for m in messages for a in m["attachments"] if a["filename"])
        assert ours == sorted(email.get("filename", []))
    elif fact == "statuscode":
        # Arkime tags the code of the reply to the end of data (smtp:statuscode:NNN).
        expected = sorted(int(tag.rsplit(":", 1)[1]) for tag in tags if tag.startswith("smtp:statuscode:"))
        ours = sorted(t["data"]["reply"]["code"] for t in record["transactions"]
                      if t["data"] and t["data"]["reply"])
        if not expected and ours:
            known_difference(request, "Arkime tags no status code on the port-2525 BDAT sessions (it does not "
                             f"pair replies after BDAT); smtpscope has {ours}")
        assert ours == expected
    elif fact == "auth":
        mechanisms = {"smtp:authplain": "PLAIN", "smtp:authlogin": "LOGIN"}
        expected = [mechanisms[tag] for tag in tags if tag in mechanisms]
        assert ([record["auth"]["mechanism"]] if record["auth"] else []) == expected
    elif fact == "starttls":
        assert (record["tls"]["mode"] == "starttls") == ("smtp:starttls" in tags)


def test_arkime_data_521_is_a_rejection(run):
    record = run(ARKIME / "smtp-data-521.pcap")[0]
    transaction = record["transactions"][0]
    assert transaction["data"]["reply"]["code"] == 521
    assert transaction["data"]["reply"]["enhanced"] == "5.2.1"
    assert transaction["outcome"] == "rejected"
    # After the 521 the client sent RSET twice and the server closed first (its FIN comes first), so
    # by the order that picks a session's outcome (README, "Transcript schema": "server_closed" ranks
    # above "rejected") the session is server_closed; the rejection is the transaction's outcome.
    assert record["outcome"] == "server_closed"
    assert record["close"]["by"] == "server"
    assert record["auth"]["mechanism"] == "PLAIN" and record["auth"]["code"] == 235


def test_arkime_data_250_then_idle_timeout(run):
    record = run(ARKIME / "smtp-data-250.pcap")[0]
    assert record["transactions"][0]["outcome"] == "delivered"
    assert any(line.startswith("421") and "4.4.2" in line for line in server_lines(record))
    assert record["outcome"] == "server_closed"


def test_arkime_rcpt_553(run):
    record = run(ARKIME / "smtp-rcpt-553.pcap")[0]
    transaction = record["transactions"][0]
    assert transaction["rcpt_to"][0]["reply"]["code"] == 553
    assert transaction["rcpt_to"][0]["reply"]["enhanced"] == "5.7.1"
    assert transaction["outcome"] == "rejected"


# --------------------------------------------------------------------------------------------------
# nDPI (.pcap.out flow lines)

NDPI_FLOW = re.compile(r"^\s*\d+\s+TCP\s+(\S+)\s+<->\s+(\S+)\s+(.*)$")


def ndpi_flows(path):
    flows = []
    for line in path.read_text().splitlines():
        found = NDPI_FLOW.match(line)
        if not found:
            continue
        client, server, rest = found.groups()
        def split(endpoint):
            host, port = endpoint.rsplit(":", 1)
            return host.strip("[]"), int(port)
        protocol = re.search(r"\[proto: [\d.]+/([A-Za-z]+)", rest).group(1)
        tls = re.search(r"\]\[(TLSv[\d.]+)\]\[", rest)
        cipher = re.search(r"\[Cipher: (\w+)\]", rest)
        flows.append({"client": split(client), "server": split(server), "protocol": protocol,
                      "tls": tls.group(1) if tls else None, "cipher": cipher.group(1) if cipher else None})
    return flows


def ndpi_cases():
    for out in sorted(NDPI.glob("*.pcap.out")):
        for index, flow in enumerate(ndpi_flows(out)):
            yield pytest.param(NDPI / out.name[:-len(".out")], flow, id=f"{out.name[:-8]}-flow{index + 1}")


def tls_version_names(ndpi):
    # nDPI writes TLS 1.0 as "TLSv1"; either spelling is accepted for it.
    return {"TLSv1": {"TLSv1", "TLSv1.0"}, "TLSv1.1": {"TLSv1.1"}, "TLSv1.2": {"TLSv1.2"}, "TLSv1.3": {"TLSv1.3"}}[ndpi]


@pytest.mark.parametrize(("capture", "flow"), list(ndpi_cases()))
def test_ndpi_flow(run, capture, flow):
    record = session(run(capture), flow["client"], flow["server"])
    if flow["protocol"] == "SMTPS":
        # nDPI says SMTPS for an SMTP flow upgraded by STARTTLS.
        assert record["tls"]["mode"] == "starttls"
        assert record["tls"]["established"] is True
        assert record["tls"]["version"] in tls_version_names(flow["tls"])
        assert record["tls"]["cipher"] == flow["cipher"]
    else:
        assert flow["protocol"] == "SMTP"
        assert record["tls"]["mode"] == "none"
        assert record["greeting"]["code"] == 220


def test_ndpi_ehlo_rejected_then_helo(run):
    record = run(NDPI / "smtp.pcap")[0]
    assert record["helo"]["verb"] == "HELO"
    assert any(line.startswith("500") for line in server_lines(record))
    transaction = record["transactions"][0]
    assert len(transaction["rcpt_to"]) == 30
    assert transaction["outcome"] == "delivered"


# --------------------------------------------------------------------------------------------------
# tshark cross-check (not an oracle: SOURCES.md lists where tshark 4.0 loses pipelined commands)

TSHARK_RELIABLE = ["zeek/smtp.pcap", "zeek/smtp-mail-transactions-invalid.pcap", "zeek/rfc3030-bdat-example1.pcap",
                   "arkime/smtp-data-521.pcap", "arkime/smtp-data-250.pcap", "arkime/smtp-rcpt-553.pcap",
                   "suricata-verify/bug-3616-smtp/input.pcap", "ndpi/smtp.pcap"]


@pytest.mark.parametrize("relative", TSHARK_RELIABLE)
def test_reply_codes_agree_with_tshark(run, relative):
    output = subprocess.run(["tshark", "-r", str(CORPUS / relative), "-Y", "smtp.response.code",
                             "-T", "fields", "-e", "smtp.response.code"],
                            capture_output=True, text=True, timeout=120, check=True).stdout
    theirs = sorted(int(code) for line in output.split() for code in line.split(","))
    ours = []
    for record in run(CORPUS / relative):
        for event in server_lines(record):
            # One code per reply: its last line ("250 ..."), not the continuation lines ("250-...").
            line = event.split("\n")[-1]
            if re.match(r"^\d{3}( |$)", line):
                ours.append(int(line[:3]))
    # tshark gives one smtp.response.code per reply, however many lines it has.
    assert sorted(ours) == theirs
