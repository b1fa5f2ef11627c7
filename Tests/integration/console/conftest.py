"""Fixtures for the web console's end-to-end tests (Tests/integration/console).

The proxy fixtures are the proxy tests' own (Tests/integration/proxy/conftest.py), loaded here rather
than copied, as the trace tests do: `proxy`, `proxy_binary` and `upstreams`, with `processes` and
`smtpscope` from the parent conftest. `browser` is a headless Chromium driven by Selenium (Debian's
chromium, chromium-driver and python3-selenium, installed by tools/setup); without them the tests skip,
and under CI=true a skip is a failure (the parent conftest).
"""
import importlib.util
import os
import pathlib
import shutil
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
PROXY_TESTS = HERE.parents[0] / "proxy"
TRACE_TESTS = HERE.parents[0] / "trace"
sys.path.insert(0, str(PROXY_TESTS))
sys.path.insert(0, str(TRACE_TESTS))

_spec = importlib.util.spec_from_file_location("smtpscope_proxy_conftest_for_console", PROXY_TESTS / "conftest.py")
_proxy_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_proxy_conftest)

proxy_binary = _proxy_conftest.proxy_binary
proxy = _proxy_conftest.proxy
upstreams = _proxy_conftest.upstreams


@pytest.fixture(scope="session")
def artefacts(tmp_path_factory, request):
    """Where the screenshots go; named on the terminal (past pytest's output capture), so a CI log
    says where to find them."""
    directory = tmp_path_factory.mktemp("console-screenshots")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\nconsole screenshots: {directory}")
    return directory


@pytest.fixture
def browser(tmp_path):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("python3-selenium is not installed (tools/setup installs it)")
    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        pytest.skip("chromium and chromium-driver are not installed (tools/setup installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    options.add_argument("--headless=new")
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")
    options.add_argument("--disable-gpu")
    options.add_argument("--disable-dev-shm-usage")
    options.add_argument("--window-size=1500,1100")
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    # Nothing but loopback: no component updates, no safe-browsing look-ups.
    options.add_argument("--disable-background-networking")
    options.add_argument("--no-proxy-server")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
