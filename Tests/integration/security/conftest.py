"""Fixtures for the hostile-input suite (README, Security: "The hostile-input cases and their tests").

Every test drives the real `smtpscope proxy` binary with raw bytes against real upstreams. The proxy
fixtures (`proxy`, `upstreams`) are the ones of Tests/integration/proxy, shared rather than copied;
`processes`, `smtpscope` and `validate_record` come from Tests/integration/conftest.py. Added here:

- `lenient_postfix`: Debian's Postfix 3.7 with `smtpd_forbid_bare_newline = no`, the server SMTP
  smuggling exploits, keeping every message it accepts in its hold queue (postfix_peer.py);
- `hostile`: hostile_peer.py, an upstream that misbehaves on purpose (slow greeting, a refused
  STARTTLS, malformed or oversized replies) and records every line it receives.
"""
import importlib.util
import pathlib
import sys

import pytest

PROXY_TESTS = pathlib.Path(__file__).resolve().parents[1] / "proxy"
if str(PROXY_TESTS) not in sys.path:
    sys.path.insert(0, str(PROXY_TESTS))

_spec = importlib.util.spec_from_file_location("smtpscope_proxy_conftest", PROXY_TESTS / "conftest.py")
_proxy_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_proxy_conftest)

# Re-exported, so pytest finds them for the tests in this folder too.
proxy_binary = _proxy_conftest.proxy_binary
proxy = _proxy_conftest.proxy
upstreams = _proxy_conftest.upstreams

from postfix_peer import LENIENT, postfix_instances  # noqa: E402  (needs PROXY_TESTS on sys.path)
from proxy_support import PYTHON, free_port  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent


@pytest.fixture
def postfixes():
    """start(main=None, hold=True) -> a started ThrowawayPostfix; all are stopped in teardown."""
    yield from postfix_instances(hold=True)


@pytest.fixture
def lenient_postfix(postfixes):
    return postfixes(main=LENIENT)


class Hostile:
    def __init__(self, processes, tmp_path):
        self.processes = processes
        self.tmp_path = tmp_path

    def start(self, *flags):
        """hostile_peer.py with FLAGS; returns (host, port, record_path)."""
        port = free_port()
        record = self.tmp_path / f"hostile-{port}.jsonl"
        argv = [PYTHON, str(HERE / "hostile_peer.py"), "--port", str(port), "--record", str(record),
                *map(str, flags)]
        self.processes.start(argv, "hostile upstream", ready_line="READY")
        return "127.0.0.1", port, record


@pytest.fixture
def hostile(processes, tmp_path):
    return Hostile(processes, tmp_path)
