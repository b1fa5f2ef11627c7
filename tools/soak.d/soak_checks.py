"""The soak's verdicts: each check returns (name, passed, details) from what the run left behind."""
import base64
import collections
import json
import pathlib


def read_jsonl(path):
    """(records, damaged line count) of a JSON Lines file; a missing file is empty."""
    records, damaged = [], 0
    path = pathlib.Path(path)
    if not path.exists():
        return records, damaged
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            damaged += 1
    return records, damaged


def read_transcripts(directory):
    records, damaged = [], 0
    # The record files only: the message trace's index.sqlite lives in the same directory.
    for path in sorted(pathlib.Path(directory).rglob("*.jsonl")):
        if path.is_file():
            more, bad = read_jsonl(path)
            records += more
            damaged += bad
    return records, damaged


def check_messages(ledger, store_path):
    """Accepted: stored exactly once with its body; withheld: never stored; uncertain: at most once;
    nothing stored that no client sent."""
    stored, damaged = read_jsonl(store_path)
    copies = collections.Counter(entry["message_id"] for entry in stored)
    bodies = collections.defaultdict(set)
    for entry in stored:
        bodies[entry["message_id"]].add(entry["body_sha256"])
    lost, duplicated, delivered_withheld, corrupted = [], [], [], []
    for message_id, fate in ledger.messages.items():
        count = copies.get(message_id, 0)
        if fate["state"] == "accepted" and count == 0:
            lost.append(message_id)
        if count > 1:
            duplicated.append(f"{message_id} x{count} ({fate['state']}, client got {fate['code']})")
        if fate["state"] == "withheld" and count:
            delivered_withheld.append(message_id)
        if count and bodies[message_id] != {fate["sha256"]}:
            corrupted.append(message_id)
    unknown = [message_id for message_id in copies if message_id not in ledger.messages]
    states = collections.Counter(fate["state"] for fate in ledger.messages.values())
    summary = (f"{len(ledger.messages)} messages: {states['accepted']} accepted, {states['uncertain']} "
               f"uncertain, {states['withheld']} withheld by their client; {len(stored)} stored "
               f"({sum(1 for m in copies if ledger.messages.get(m, {}).get('state') == 'uncertain')} of "
               f"them uncertain ones)")
    results = [
        ("every message answered 250 is stored (nothing lost)", not lost and states["accepted"] > 0,
         summary + (f"; LOST {len(lost)}: {lost[:5]}" if lost else "")),
        ("no message stored twice", not duplicated,
         f"{len(duplicated)} duplicated: {duplicated[:5]}" if duplicated else "none"),
        ("no message whose client never sent the end of data is stored", not delivered_withheld,
         f"{len(delivered_withheld)} delivered: {delivered_withheld[:5]}" if delivered_withheld else
         f"{states['withheld']} withheld, none stored"),
        ("stored bodies are the bodies sent", not corrupted,
         f"{len(corrupted)} differ: {corrupted[:5]}" if corrupted else "all match (SHA-256)"),
        ("nothing stored that no client sent", not unknown and not damaged,
         (f"{len(unknown)} unknown: {unknown[:5]}" if unknown else "none")
         + (f"; {damaged} damaged store lines" if damaged else "")),
    ]
    return results


def check_transcripts(ledger, directory):
    """One record per connection, matched by source address and port. A connection reset before the
    proxy accepted it may have a record without a client address (the peer is gone by the time the
    proxy asks for its name): such records count for connections of clients that vanished at once."""
    records, damaged = read_transcripts(directory)
    seen = collections.Counter()
    for record in records:
        client = record.get("client") or {}
        seen[(client.get("ip"), client.get("port"))] += 1
    opened = collections.Counter((ip, port) for ip, port, _ in ledger.connections)
    missing = opened - seen
    extra = seen - opened
    anonymous = extra.pop((None, None), 0)
    vanished_at_once = collections.Counter((ip, port) for ip, port, kind in ledger.connections
                                           if kind == "vanish-connect" and (ip, port) in missing)
    unmatched = sum(missing.values()) - min(anonymous, sum(vanished_at_once.values()))
    anonymous_left = anonymous - min(anonymous, sum(vanished_at_once.values()))
    kinds = collections.Counter(kind for ip, port, kind in ledger.connections if (ip, port) in missing)
    detail = (f"{sum(opened.values())} connections, {len(records)} records"
              + (f"; {anonymous} records without a client address, for {sum(vanished_at_once.values())} "
                 f"connections reset at once" if anonymous else "")
              + (f"; {unmatched} connections without a record (by kind {dict(kinds)}), e.g. "
                 f"{list(missing)[:5]}" if unmatched > 0 else "; every connection matched")
              + (f"; {sum(extra.values()) + anonymous_left} records of no soak connection: {list(extra)[:5]}"
                 if extra or anonymous_left else "")
              + (f"; {damaged} lines not JSON" if damaged else ""))
    passed = unmatched <= 0 and not extra and anonymous_left == 0 and not damaged
    return [("every session has a transcript record", passed, detail)]


def secret_forms(user, passwords):
    """Every password, and the base64 forms a client sent: PLAIN blobs, LOGIN user and password."""
    forms = {}
    b64 = lambda data: base64.b64encode(data.encode()).decode()
    forms[f"LOGIN user base64 {b64(user)}"] = b64(user)
    for password in passwords:
        forms[f"password {password}"] = password
        forms[f"PLAIN blob {b64(chr(0) + user + chr(0) + password)}"] = b64(chr(0) + user + chr(0) + password)
        forms[f"LOGIN password base64 {b64(password)}"] = b64(password)
    return forms


def check_secrets(user, passwords, paths):
    forms = {name: value.encode() for name, value in secret_forms(user, passwords).items()}
    found = []
    scanned = 0
    for root in paths:
        root = pathlib.Path(root)
        for path in ([root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())):
            data = path.read_bytes()
            scanned += len(data)
            found += [f"{name} in {path}" for name, value in forms.items() if value in data]
    return [("no AUTH secret in transcripts or logs", not found,
             f"{len(forms)} forms searched in {scanned} octets" + (f"; FOUND {found[:5]}" if found else ""))]
