"""Fixtures for the message trace's end-to-end tests (Tests/integration/trace).

The proxy fixtures are the proxy tests' own (Tests/integration/proxy/conftest.py), loaded here
rather than copied: `proxy`, `proxy_binary` and `upstreams`, with `processes`, `smtpscope` and
`validate_record` from the parent conftest.
"""
import importlib.util
import pathlib
import sys

PROXY_TESTS = pathlib.Path(__file__).resolve().parents[1] / "proxy"
sys.path.insert(0, str(PROXY_TESTS))

_spec = importlib.util.spec_from_file_location("smtpscope_proxy_conftest", PROXY_TESTS / "conftest.py")
_proxy_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_proxy_conftest)

proxy_binary = _proxy_conftest.proxy_binary
proxy = _proxy_conftest.proxy
upstreams = _proxy_conftest.upstreams
