"""`smtpscope proxy` with no arguments works on a fresh checkout: it listens on 127.0.0.1:2525 in
front of the built-in sink, applies `rules/` and writes `./transcripts/` (README, "Command line")."""
import time

import pytest

from proxy_support import check_records, delivered, listening, port_in_use, read_records, swaks
from proxy_support import integration


def test_no_argument_proxy_listens_on_2525_in_front_of_the_builtin_sink(proxy_binary, processes, tmp_path, validate_record):
    if port_in_use(2525):
        pytest.skip("127.0.0.1:2525 is busy, so the no-argument default cannot be tried here")
    process = processes.start([str(proxy_binary), "proxy"], "smtpscope proxy (defaults)", cwd=tmp_path)
    deadline = time.monotonic() + integration.PEER_START_TIMEOUT
    while not listening(2525):
        assert process.poll() is None, f"smtpscope proxy exited {process.returncode}: {processes.output(process)}"
        assert time.monotonic() < deadline, "smtpscope proxy did not listen on 2525"
        time.sleep(0.05)
    completed = swaks("127.0.0.1", 2525, "--from", "a@client.test", "--to", "b@sink.test")
    assert "queued as" in completed.stdout
    stdout, stderr = processes.output(process)
    said = stdout + stderr
    assert "127.0.0.1:2525" in said, f"start-up message does not say where it listens: {said!r}"
    assert "transcripts" in said, f"start-up message does not say where transcripts go: {said!r}"
    assert "sink" in said.lower(), f"start-up message does not mention the built-in sink: {said!r}"
    transcripts = tmp_path / "transcripts"
    deadline = time.monotonic() + 15
    while not read_records(transcripts) and time.monotonic() < deadline:
        time.sleep(0.1)
    processes.stop(process)
    records = read_records(transcripts)
    check_records(records, validate_record, count=1)
    assert len(delivered(records[0])) == 1
    assert records[0]["outcome"] == "completed"
