"""The helpers of this folder's conftest.py under a module name of their own.

Test files import helpers from here rather than `from conftest import ...`: when pytest collects
Tests/integration together with Tests/integration/proxy, the bare name "conftest" can resolve to
proxy/conftest.py. The module is loaded once, under the same name proxy/proxy_support.py uses.
"""
import importlib.util
import pathlib
import sys

_NAME = "smtpscope_integration_conftest"
if _NAME in sys.modules:
    _module = sys.modules[_NAME]
else:
    _spec = importlib.util.spec_from_file_location(_NAME, pathlib.Path(__file__).with_name("conftest.py"))
    _module = importlib.util.module_from_spec(_spec)
    sys.modules[_NAME] = _module
    _spec.loader.exec_module(_module)

CORPUS = _module.CORPUS
parse_jsonl = _module.parse_jsonl
find_binary = _module.find_binary
load_schema = _module.load_schema
anomaly_kinds = _module.anomaly_kinds
b64 = _module.b64
event_texts = _module.event_texts
only_session = _module.only_session
swaks = _module.swaks
REPO_ROOT = _module.REPO_ROOT
COMMAND_TIMEOUT = _module.COMMAND_TIMEOUT
IN_CI = _module.IN_CI
known_difference = _module.known_difference
