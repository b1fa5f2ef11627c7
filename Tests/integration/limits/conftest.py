"""Fixtures for the sender limits' and the policy service's end-to-end tests (Tests/integration/limits).

The proxy fixtures are the proxy tests' own (Tests/integration/proxy/conftest.py), loaded here rather
than copied: `proxy`, `proxy_binary` and `upstreams`, with `processes`, `smtpscope` and
`validate_record` from the parent conftest. `postfix` starts throwaway Postfix instances
(proxy/postfix_peer.py); `policy` starts `smtpscope policy`.
"""
import importlib.util
import pathlib
import sys
import time

import pytest

PROXY_TESTS = pathlib.Path(__file__).resolve().parents[1] / "proxy"
if str(PROXY_TESTS) not in sys.path:
    sys.path.insert(0, str(PROXY_TESTS))

_spec = importlib.util.spec_from_file_location("smtpscope_proxy_conftest_limits", PROXY_TESTS / "conftest.py")
_proxy_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_proxy_conftest)

proxy_binary = _proxy_conftest.proxy_binary
proxy = _proxy_conftest.proxy
upstreams = _proxy_conftest.upstreams

from postfix_peer import postfix_instances  # noqa: E402  (needs PROXY_TESTS on sys.path)
from proxy_support import free_port, integration, listening  # noqa: E402


@pytest.fixture
def postfix():
    yield from postfix_instances()


class PolicyRun:
    def __init__(self, processes, process, port, decisions):
        self.processes = processes
        self.process = process
        self.port = port
        self.decisions_path = decisions

    def decisions(self, expected=0, timeout=10):
        """The smtpscope.policy/1 records written so far, waiting up to `timeout` for `expected`."""
        import json
        deadline = time.monotonic() + timeout
        while True:
            lines = self.decisions_path.read_text().splitlines() if self.decisions_path.exists() else []
            records = [json.loads(line) for line in lines if line.endswith("}")]
            if len(records) >= expected or time.monotonic() > deadline:
                return records
            time.sleep(0.1)

    def output(self):
        stdout, stderr = self.processes.output(self.process)
        return stdout + stderr


@pytest.fixture
def policy(smtpscope, processes, tmp_path):
    """start(rules_dir) -> PolicyRun: `smtpscope policy` on a free loopback port."""
    def start(rules):
        port = free_port()
        decisions = tmp_path / f"policy-{port}.jsonl"
        argv = [str(smtpscope.path), "policy", "--listen", f"127.0.0.1:{port}", "--rules", str(rules),
                "--transcripts", str(decisions)]
        process = processes.start(argv, "smtpscope policy")
        deadline = time.monotonic() + integration.PEER_START_TIMEOUT
        while not listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                processes.stop(process)
                stdout, stderr = processes.output(process)
                raise AssertionError(f"smtpscope policy did not listen on {port}:\n{' '.join(argv)}\n{stdout}{stderr}")
            time.sleep(0.05)
        return PolicyRun(processes, process, port, decisions)

    return start
