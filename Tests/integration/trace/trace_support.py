"""Helpers for the message trace's end-to-end tests: running `smtpscope trace` and `smtpscope index`,
and waiting for the proxy's index writer (which indexes off the event loop, so a record reaches the
index shortly after its transcript)."""
import json
import pathlib
import smtplib
import time

INDEX_WAIT = 60


def trace(smtpscope, index, *args, check=True):
    """`smtpscope trace --index INDEX ARGS...`; with check, insists on exit 0."""
    result = smtpscope.run("trace", "--index", index, *args)
    if check:
        assert result.returncode == 0, f"smtpscope trace {args} exited {result.returncode}: {result.stderr}"
    return result


def trace_lines(smtpscope, index, *args):
    """The JSON lines `trace --format jsonl` prints, as text."""
    return [line for line in trace(smtpscope, index, "--format", "jsonl", *args).stdout.split("\n") if line]


def trace_ids(smtpscope, index, *args):
    return [json.loads(line)["session_id"] for line in trace_lines(smtpscope, index, *args)]


def wait_for_index(smtpscope, index, count, *args):
    """Waits (bounded) until `trace` finds `count` sessions; returns their ids, newest first."""
    deadline = time.monotonic() + INDEX_WAIT
    ids = []
    while time.monotonic() < deadline:
        if str(index).startswith("postgres://") or pathlib.Path(index).exists():
            result = trace(smtpscope, index, "--format", "jsonl", *args, check=False)
            if result.returncode == 0:
                ids = [json.loads(line)["session_id"] for line in result.stdout.split("\n") if line]
                if len(ids) >= count:
                    return ids
        time.sleep(0.2)
    raise AssertionError(f"the index {index} has {len(ids)} of {count} sessions after {INDEX_WAIT} s")


def transcript_lines(directory):
    """Every record line of a transcripts directory, by session id, exactly as written."""
    lines = {}
    for path in sorted(pathlib.Path(directory).glob("smtpscope-*.jsonl")):
        for line in path.read_text(encoding="utf-8").split("\n"):
            if line.strip():
                lines[json.loads(line)["session_id"]] = line
    return lines


def smtplib_send(host, port, sender, recipients, message):
    """Sends with Python's smtplib; returns the refused recipients (a partial delivery is not an error)."""
    with smtplib.SMTP(host, port, local_hostname="client.test", timeout=20) as client:
        return client.sendmail(sender, recipients, message)
