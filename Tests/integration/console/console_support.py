"""Helpers for the console's end-to-end tests: a proxy serving the console, and plain HTTP requests
(urllib, never following redirects) with or without the token."""
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request

from proxy_support import free_port, integration

BANNER_WAIT = 20
CONSOLE_LINE = re.compile(r"console:\s+(http://\S+/) \(token: ([0-9a-f]{64})\)")


class Console:
    """A running console: its URL, its token, and the process serving it."""

    def __init__(self, url, token, run=None):
        self.url = url.rstrip("/")
        self.token = token
        self.run = run

    def request(self, path, method="GET", token=None, cookie=None, data=None, headers=None):
        """(status, headers, body text); redirects are returned, not followed."""
        request = urllib.request.Request(self.url + path, method=method, data=data)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        if cookie:
            request.add_header("Cookie", cookie)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(request, timeout=20) as response:
                return response.status, response.headers, response.read().decode("utf-8")
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read().decode("utf-8")

    def api(self, path):
        status, _, body = self.request(path, token=self.token)
        assert status == 200, f"GET {path}: {status} {body[:300]}"
        return json.loads(body)

    def login(self):
        """A session cookie, as the login form gets it."""
        data = urllib.parse.urlencode({"token": self.token}).encode()
        status, headers, _ = self.request("/login", method="POST", data=data,
                                          headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 303, status
        set_cookie = headers["Set-Cookie"]
        return set_cookie.split(";")[0], set_cookie

    def wait_for_sessions(self, count, timeout=60):
        """The API's sessions once it has `count` (the index is written off the event loop)."""
        deadline = time.monotonic() + timeout
        sessions = []
        while time.monotonic() < deadline:
            sessions = self.api("/api/sessions")["sessions"]
            if len(sessions) >= count:
                return sessions
            time.sleep(0.2)
        raise AssertionError(f"the console shows {len(sessions)} of {count} sessions after {timeout} s")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def start_proxy_with_console(proxy, upstream, *extra):
    """`smtpscope proxy --console 127.0.0.1:PORT`; waits for the banner's console line."""
    console_port = free_port()
    run = proxy(upstream, "--console", f"127.0.0.1:{console_port}", *extra)
    deadline = time.monotonic() + BANNER_WAIT
    while time.monotonic() < deadline:
        match = CONSOLE_LINE.search(run.output())
        if match:
            assert match.group(1) == f"http://127.0.0.1:{console_port}/"
            return Console(match.group(1), match.group(2), run)
        time.sleep(0.05)
    raise AssertionError(f"no console line in the proxy's banner:\n{run.output()}")


SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def assert_security_headers(headers, what):
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, f"{what}: {name} is {headers.get(name)!r}"


__all__ = ["Console", "start_proxy_with_console", "assert_security_headers", "free_port", "integration"]
