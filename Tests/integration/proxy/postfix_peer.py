"""A throwaway Postfix instance as a real upstream.

Shared by test_proxy_xclient.py (XCLIENT) and Tests/integration/security (the lenient server that
smuggling exploits). Each instance has its own main.cf, master.cf and queue under /tmp, listens on a
free loopback port, logs to DIR/maillog, and accepts mail for example.org, which it discards. The
Received: header of each message is logged through a `header_checks` WARN.

`main` adds or overrides main.cf parameters. With `hold=True` every accepted message stays in the hold
queue instead of being delivered, so a test can count what the server stored and read it (`held()`):
the oracle "the upstream stores at most one message and never the smuggled content".
"""
import os
import pathlib
import pwd
import re
import shutil
import subprocess
import tempfile
import time

from proxy_support import COMMAND_TIMEOUT, free_port, listening

POSTFIX_WAIT = 20
DEFAULT_MAIN_CF = pathlib.Path("/etc/postfix/main.cf")

# main.cf settings that turn Postfix 3.7 into the server SMTP smuggling exploits: bare
# LF is a line end, so `<LF>.<LF>` and `<LF>.<CR><LF>` end the message.
LENIENT = {"smtpd_forbid_bare_newline": "no"}


class ThrowawayPostfix:
    """A Postfix instance of its own (main.cf, master.cf, queue) on a free loopback port."""

    def __init__(self, inet_protocols="all", main=None, hold=False):
        self.port = free_port()
        self.directory = pathlib.Path(tempfile.mkdtemp(prefix="smtpscope-postfix-", dir="/tmp"))
        self.directory.chmod(0o755)
        self.log = self.directory / "maillog"
        (self.directory / "queue").mkdir()
        data = self.directory / "data"
        data.mkdir()
        postfix_user = pwd.getpwnam("postfix")
        os.chown(data, postfix_user.pw_uid, postfix_user.pw_gid)
        (self.directory / "header_checks").write_text("/^Received:/ WARN\n")
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": f"{self.directory}/queue",
            "data_directory": f"{self.directory}/data",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": "upstream.test",
            "mydomain": "upstream.test",
            "myorigin": "upstream.test",
            "mydestination": "example.org",
            "local_recipient_maps": "",
            "local_transport": "discard",
            "default_transport": "discard",
            "relay_transport": "discard",
            "alias_maps": "",
            "alias_database": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": inet_protocols,
            "mynetworks": "127.0.0.0/8",
            "smtpd_authorized_xclient_hosts": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "smtpd_client_port_logging": "yes",
            "smtputf8_enable": "no",
            "maillog_file": str(self.log),
            "maillog_file_prefixes": "/tmp",
            "header_checks": f"regexp:{self.directory}/header_checks",
        }
        if hold:
            # Every message the server accepts stays in the hold queue, readable as a file.
            settings["smtpd_end_of_data_restrictions"] = "check_client_access static:HOLD"
        settings.update(main or {})
        (self.directory / "main.cf").write_text("".join(f"{key} = {value}\n" for key, value in settings.items()))
        services = [
            f"127.0.0.1:{self.port} inet n - n - - smtpd",
            "pickup unix n - n 60 1 pickup",
            "cleanup unix n - n - 0 cleanup",
            "qmgr unix n - n 300 1 qmgr",
            "rewrite unix - - n - - trivial-rewrite",
            "bounce unix - - n - 0 bounce",
            "defer unix - - n - 0 bounce",
            "trace unix - - n - 0 bounce",
            "verify unix - - n - 1 verify",
            "flush unix n - n 1000? 0 flush",
            "proxymap unix - - n - - proxymap",
            "showq unix n - n - - showq",
            "error unix - - n - - error",
            "retry unix - - n - - error",
            "discard unix - - n - - discard",
            "anvil unix - - n - 1 anvil",
            "scache unix - - n - 1 scache",
            "postlog unix-dgram n - n - 1 postlogd",
        ]
        (self.directory / "master.cf").write_text("\n".join(services) + "\n")

    @staticmethod
    def _alternates():
        completed = subprocess.run(["postconf", "-h", "alternate_config_directories"], capture_output=True,
                                   text=True, timeout=COMMAND_TIMEOUT)
        return [d for d in re.split(r"[\s,]+", completed.stdout.strip()) if d]

    def _set_alternates(self, directories):
        # Debian's "No configuration" install (tools/setup's choice) leaves no default main.cf, and
        # `postconf -e` cannot edit a file that is not there. An empty main.cf is Postfix's defaults.
        if not DEFAULT_MAIN_CF.exists():
            DEFAULT_MAIN_CF.write_text("# Written by smtpscope's tests: Postfix's defaults, plus the throwaway\n"
                                       "# instances' directories (alternate_config_directories).\n")
        subprocess.run(["postconf", "-e", f"alternate_config_directories = {', '.join(directories)}"],
                       check=True, timeout=COMMAND_TIMEOUT)

    def start(self):
        # `postfix -c DIR` is refused unless the default main.cf lists DIR in
        # alternate_config_directories: it then exits 1 and prints nothing.
        self._set_alternates(self._alternates() + [str(self.directory)])
        # postfix prints its diagnostics only to a terminal.
        completed = subprocess.run(["script", "-qec", f"postfix -c {self.directory} start", "/dev/null"],
                                   capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
        if completed.returncode != 0:
            raise AssertionError(f"postfix -c {self.directory} start failed:\n{completed.stdout}{completed.stderr}")
        deadline = time.monotonic() + POSTFIX_WAIT
        while not listening(self.port):
            if time.monotonic() > deadline:
                raise AssertionError(f"Postfix did not listen on {self.port}:\n{self.log_text()}")
            time.sleep(0.1)

    def stop(self):
        subprocess.run(["script", "-qec", f"postfix -c {self.directory} stop", "/dev/null"],
                       capture_output=True, timeout=COMMAND_TIMEOUT)
        self._set_alternates([d for d in self._alternates() if d != str(self.directory)])
        shutil.rmtree(self.directory, ignore_errors=True)

    def log_text(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def received(self, count=1):
        """The logged Received: headers ("from HELO (NAME [ADDR]) ... proto=P helo=<H>"), waiting for `count`."""
        deadline = time.monotonic() + POSTFIX_WAIT
        while True:
            lines = [line for line in self.log_text().splitlines() if "warning: header Received:" in line]
            if len(lines) >= count or time.monotonic() > deadline:
                return lines
            time.sleep(0.1)

    def held(self):
        """The queue files of the messages in the hold queue (with `hold=True`), oldest first. A queue
        file holds the message's lines as records, so its bytes contain every line's text."""
        hold = self.directory / "queue" / "hold"
        if not hold.is_dir():
            return []
        files = sorted((p for p in hold.rglob("*") if p.is_file()), key=lambda p: p.stat().st_mtime)
        return [p.read_bytes() for p in files]

    def stored(self, count=0, timeout=POSTFIX_WAIT):
        """held(), after waiting until at least `count` messages are there (or the timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            messages = self.held()
            if len(messages) >= count or time.monotonic() > deadline:
                return messages
            time.sleep(0.1)


def postfix_instances(**defaults):
    """For a fixture to `yield from`: yields start(**options) -> a started ThrowawayPostfix (options
    over `defaults`), and stops every instance it started afterwards. Skips when Postfix or root is
    missing."""
    import pytest
    if shutil.which("postfix") is None or shutil.which("script") is None:
        pytest.skip("Postfix not installed; run tools/setup")
    if os.geteuid() != 0:
        pytest.skip("a throwaway Postfix instance needs root")
    instances = []

    def start(**options):
        instance = ThrowawayPostfix(**{**defaults, **options})
        instances.append(instance)
        instance.start()
        return instance

    try:
        yield start
    finally:
        for instance in instances:
            instance.stop()
