"""Hostile-input case 24 (README, Security): one reply per command, so an upstream that sends broken
replies is an upstream protocol error. The client gets `421 4.3.0`, the proxy closes, records it, and its
memory stays bounded."""
import pytest

from proxy_support import RawClient, check_records
from security_support import NO_RULES, anomaly_kinds, rss_kib


@pytest.mark.parametrize("kind", ["mixed", "lines", "huge"],
                         ids=["mixed-codes", "10000-continuation-lines", "1MB-line"])
def test_row24_a_broken_upstream_reply_gets_421_4_3_0(proxy, hostile, validate_record, kind):
    host, port, _ = hostile.start("--ehlo-reply", kind)
    run = proxy((host, port), *NO_RULES)
    client = RawClient(run.host, run.port)
    try:
        assert client.reply()[0] == 220
        before = rss_kib(run.process.pid)
        code, lines = client.command("EHLO raw.client.test\r\n")
        assert code == 421 and lines[0].startswith("421 4.3.0"), lines[:3]
        follow, _ = client.reply()
        assert follow is None, "the proxy closes after an upstream protocol error"
        after = rss_kib(run.process.pid)
    finally:
        client.close()
    assert after - before < 16 * 1024, f"RSS grew by {after - before} KiB"
    [record] = run.records(1)
    check_records([record], validate_record)
    assert "malformed_reply" in anomaly_kinds(record)
