"""The proxy and `pcap --rules` judge the same session alike, on every message of the corpus.

Both build a rule's facts with the same code (the message facts from a MIME reading of the whole
message), so a rule on any header field or on the body gives the same verdict live and on a capture.
This test proves it on real-world messages: every plaintext transaction tshark finds in the corpus
captures is sent, with its envelope and HELO name, through `smtpscope proxy` to an aiosmtpd upstream,
with tcpdump on the client leg. `smtpscope pcap --rules` then reads that capture. For every session the
verdicts (stage, rule, action and detail, per transaction) must be equal to the proxy's own. The rules
are all `mode monitor`, so the proxy changes nothing, and each verdict's detail carries the facts its
rule saw (header fields, body text, attachments, envelope), so equal verdicts mean equal facts.

The messages are taken from the captures by a simple reading of the client's bytes (tshark's segments
placed by sequence number) that shares no code with smtpscope and does not look at the server's
replies. A message goes through the proxy when its SHA-256 is one smtpscope's record of the original
capture has; the few this reading gets wrong (a refused DATA followed by commands) are listed, and the
test insists that most of the corpus goes through.
"""
import hashlib
import json
import re
import smtplib
import subprocess

from integration_support import CORPUS, COMMAND_TIMEOUT, parse_jsonl

RULES = r"""
# Every stage and every kind of message fact, in monitor mode: the session goes on untouched, and each
# verdict's detail carries what its rule saw.
rule "connect" on connect
  mode monitor
  when client.ip != none
  tag "tls=${tls}"

rule "helo" on helo
  mode monitor
  when helo != none
  tag "helo=${helo}"

rule "mail" on mail
  mode monitor
  when mail_from != none
  tag "from=${mail_from} domain=${mail_from.domain}"

rule "rcpt" on rcpt
  mode monitor
  when rcpt != none
  tag "rcpt=${rcpt} before=${rcpt_count}"

rule "data" on data
  mode monitor
  when rcpt_count > 0
  tag "rcpts=${rcpt} count=${rcpt_count}"

rule "summary" on message
  mode monitor
  when size > 0
  tag "size=${size} subject=${subject} from=${from} id=${message_id}"

rule "mailer" on message
  mode monitor
  when header("X-Mailer") matches /^(.{0,60})/
  tag "mailer=${1}"

rule "content-type" on message
  mode monitor
  when header("Content-Type") matches /^([^;]{0,60})/
  tag "type=${1}"

rule "received" on message
  mode monitor
  when any headers("Received") matches /\bby ([^ ]{1,60})/
  tag "received by ${1}"

rule "body-word" on message
  mode monitor
  when body matches /(?i)\b(the|and|you|http)\b/
  tag "word=${1}"

rule "body-opening" on message
  mode monitor
  when body matches /^(.{0,40})/s
  tag "opening=${1}"

rule "attachments" on message
  mode monitor
  when attachment.filename != none
  tag "files=${attachment.filename} types=${attachment.content_type} sizes=${attachment.size}"
"""


def corpus_captures():
    return sorted(p for p in CORPUS.rglob("*") if p.suffix in (".pcap", ".pcapng") or p.name.endswith(".pcap.gz"))


def client_streams(path):
    """Each TCP stream's client bytes (the client is the side the 220 greeting is not from), placed by
    sequence number, so a retransmission cut into other segments lands on itself."""
    output = subprocess.run(
        ["tshark", "-r", str(path), "-Y", "tcp.len > 0",
         "-T", "fields", "-e", "tcp.stream", "-e", "tcp.srcport", "-e", "tcp.seq", "-e", "tcp.payload"],
        capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=True,
    ).stdout
    segments = {}
    for line in output.splitlines():
        fields = line.split("\t")
        if len(fields) < 4 or not fields[3]:
            continue
        # A field tshark finds twice in one frame (a tunnel) lists both, comma-separated.
        stream, source, sequence, payload = (field.split(",")[0] for field in fields[:4])
        segments.setdefault(stream, {}).setdefault(source, []).append((int(sequence), bytes.fromhex(payload.replace(":", ""))))
    streams = []
    for sides in segments.values():
        server = next((port for port, pieces in sides.items() if min(pieces)[1].startswith(b"220")), None)
        if server is None:
            continue
        for port, pieces in sides.items():
            if port == server:
                continue
            base = min(sequence for sequence, _ in pieces)
            data = bytearray(max(sequence - base + len(piece) for sequence, piece in pieces))
            for sequence, piece in pieces:
                data[sequence - base:sequence - base + len(piece)] = piece
            streams.append(bytes(data))
    return streams


def path_of(argument):
    text = argument.decode("latin-1")
    start, end = text.find("<"), text.find(">")
    return text[start + 1:end] if 0 <= start < end else text.split()[0] if text.split() else ""


def transactions(data):
    """(helo, mail_from, recipients, content) for every message a client's bytes carry, up to a
    STARTTLS (what follows is encrypted). Content is un-stuffed (RFC 5321 §4.5.2)."""
    found, helo, mail, rcpts, chunks = [], None, None, [], []
    position = 0
    while True:
        end = data.find(b"\n", position)
        if end < 0:
            break
        line = data[position:end].rstrip(b"\r")
        position = end + 1
        verb = line.split(b" ", 1)[0].upper()
        if verb in (b"EHLO", b"HELO"):
            helo = line[5:].strip().decode("latin-1") or None
        elif line.upper().startswith(b"MAIL FROM:"):
            mail, rcpts, chunks = path_of(line[10:]), [], []
        elif line.upper().startswith(b"RCPT TO:"):
            rcpts.append(path_of(line[8:]))
        elif verb == b"RSET":
            mail, rcpts, chunks = None, [], []
        elif verb == b"STARTTLS":
            break
        elif verb == b"DATA" and line.strip().upper() == b"DATA":
            if data.startswith(b".\r\n", position):
                content, position = b"", position + 3
            else:
                stop = data.find(b"\r\n.\r\n", position)
                if stop < 0:
                    break
                content, position = data[position:stop + 2], stop + 5
            lines = content.split(b"\r\n")
            content = b"\r\n".join(l[1:] if l.startswith(b".") else l for l in lines)
            if mail is not None and rcpts:
                found.append((helo, mail, list(rcpts), content))
            mail, rcpts = None, []
        elif verb == b"BDAT":
            parts = line.split()
            try:
                size = int(parts[1])
            except (IndexError, ValueError):
                break
            chunks.append(data[position:position + size])
            position += size
            if len(parts) > 2 and parts[2].upper() == b"LAST":
                if mail is not None and rcpts:
                    found.append((helo, mail, list(rcpts), b"".join(chunks)))
                mail, rcpts, chunks = None, [], []
    return found


def recorded_digests(smtpscope, path):
    """The SHA-256 of every message smtpscope's record of the capture has."""
    records = parse_jsonl(smtpscope.pcap(path, check=False).stdout)
    return {t["message"]["sha256"] for r in records for t in r.get("transactions") or []
            if (t.get("message") or {}).get("sha256")}


def verdicts(record):
    found = [("session", v["stage"], v["rule"], v["action"], v.get("detail")) for v in record.get("rules") or []]
    for index, transaction in enumerate(record.get("transactions") or []):
        found += [(index, v["stage"], v["rule"], v["action"], v.get("detail")) for v in transaction.get("rules") or []]
    return found


def test_the_proxy_and_pcap_rules_give_the_same_verdicts_on_every_corpus_message(
        smtpscope, proxy, upstreams, capture, tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "10-facts.rules").write_text(RULES)
    host, port, _ = upstreams.aiosmtpd()
    run = proxy((host, port), "--rules", rules)

    messages, misread = [], []
    for path in corpus_captures():
        digests = recorded_digests(smtpscope, path)
        for message in (m for stream in client_streams(path) for m in transactions(stream)):
            if hashlib.sha256(message[3]).hexdigest() in digests:
                messages.append((path, *message))
            else:
                misread.append(f"{path.name}: <{message[1]}>")
    assert len(messages) >= 4 * len(misread), f"{len(messages)} messages read, {len(misread)} misread: {misread}"

    sent, unsendable = [], []
    with capture(run.port) as capture_path:
        for path, helo, mail, rcpts, content in messages:
            try:
                with smtplib.SMTP(run.host, run.port, local_hostname="replay.test", timeout=30) as client:
                    client.ehlo(helo or "replay.test")
                    # smtplib declares SIZE before it turns bare LFs into CRLF; the proxy holds a
                    # client to its declared SIZE, so the line ends are made CRLF first.
                    client.sendmail(mail, rcpts, re.sub(rb"\r\n|\n|\r(?!\n)", b"\r\n", content))
            except smtplib.SMTPResponseException:
                pass  # refused (a line too long for aiosmtpd, say): a session all the same
            except (smtplib.SMTPException, UnicodeError) as error:
                unsendable.append((path.name, mail, repr(error)[:100]))
                continue
            sent.append(path)
    assert len(sent) >= 15 and not unsendable, f"{len(sent)} corpus messages went through the proxy; not: {unsendable}"

    live = run.records(len(sent))
    replayed = parse_jsonl(smtpscope.pcap(capture_path, "--ports", str(run.port), "--rules", rules).stdout)
    by_client = {r["client"]["port"]: r for r in replayed}
    assert len(live) >= len(sent) and len(by_client) == len(live), (len(live), len(by_client))
    mismatches = []
    judged_messages = 0
    refused_by_limits = []
    for record in live:
        other = by_client.get(record["client"]["port"])
        assert other is not None, f"no pcap session for the proxy's session {record['session_id']}"
        if any(t.get("message") and not t["message"].get("sha256") for t in record.get("transactions") or []):
            # No digest: the proxy cut the message on its own limits (size, header section), before any
            # `message` rule; a capture of a server's refusal looks the same, and there the proxy
            # would have judged the message first. Such sessions are compared up to `data`.
            refused_by_limits.append(record["session_id"])
            record, other = without_message_stage(record), without_message_stage(other)
        judged_messages += sum(1 for t in record.get("transactions") or [] if t.get("message"))
        if verdicts(record) != verdicts(other):
            mine, theirs = verdicts(record), verdicts(other)
            first = next((i for i, (a, b) in enumerate(zip(mine, theirs)) if a != b), min(len(mine), len(theirs)))
            mismatches.append(f"session {record['session_id']} ({len(mine)} and {len(theirs)} verdicts), from the "
                              f"{first + 1}th: proxy {mine[first:first + 3]}, pcap {theirs[first:first + 3]}; "
                              f"anomalies {[a['kind'] for a in record.get('anomalies') or []]}")
    assert not mismatches, f"{len(mismatches)} of {len(live)} sessions judged differently:\n" + "\n".join(mismatches[:3])
    assert judged_messages >= 15 and len(refused_by_limits) <= 2, (judged_messages, refused_by_limits)


def without_message_stage(record):
    record = dict(record)
    record["transactions"] = [dict(t, rules=[v for v in t.get("rules") or [] if v["stage"] != "message"])
                              for t in record.get("transactions") or []]
    return record
