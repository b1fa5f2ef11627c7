"""The processes the soak runs: `smtpscope proxy` and the recording upstream (upstream.py), with the
faults the soak injects into the upstream, and the measurements it takes of the proxy."""
import os
import pathlib
import select
import signal
import socket
import subprocess
import time
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
PYTHON = "/usr/bin/python3"  # Debian's interpreter, the one with python3-aiosmtpd


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port):
    """True when a TCP socket listens on the port, read from /proc (no probe connection, so no session
    appears in the transcripts)."""
    wanted = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = pathlib.Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        if any(len(f) > 3 and f[1].endswith(wanted) and f[3] == "0A" for f in (r.split() for r in rows)):
            return True
    return False


class Upstream:
    """upstream.py on a fixed port, restartable, appending to one store across restarts."""

    def __init__(self, workdir, user, password):
        self.port = free_port()
        self.store = workdir / "upstream-store.jsonl"
        self.log = open(workdir / "upstream.log", "ab")
        self.user, self.password = user, password
        self.process = None
        self.starts = 0
        self.refusing = False

    def start(self, timeout=60):
        argv = [PYTHON, str(HERE / "upstream.py"), "--port", str(self.port), "--store", str(self.store),
                "--auth-user", self.user, "--auth-password", self.password]
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL)
        self.starts += 1
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.5)
            if ready:
                line = self.process.stdout.readline()
                break
            if self.process.poll() is not None:
                break
        if line.strip() != b"READY":
            raise RuntimeError(f"the upstream did not start (exit {self.process.poll()}); see {self.log.name}")

    def kill(self):
        """A crash: SIGKILL, no goodbye to anyone."""
        self.process.send_signal(signal.SIGCONT)
        self.process.kill()
        self.process.wait()

    def refuse(self, on):
        self.process.send_signal(signal.SIGUSR1 if on else signal.SIGUSR2)
        self.refusing = on

    def stall(self, on):
        self.process.send_signal(signal.SIGSTOP if on else signal.SIGCONT)

    def stopped(self):
        """True when the kernel holds the process stopped (state T in /proc/PID/stat)."""
        try:
            stat = pathlib.Path(f"/proc/{self.process.pid}/stat").read_text()
        except OSError:
            return False
        return stat.rsplit(")", 1)[1].split()[0] == "T"

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGCONT)
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Proxy:
    def __init__(self, binary, workdir, upstream_port, sessions):
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.metrics_port = free_port()
        self.transcripts = workdir / "transcripts"
        self.transcripts.mkdir()
        self.log_path = workdir / "proxy.log"
        self.argv = [str(binary), "proxy",
                     "--listen", f"127.0.0.1:{self.port}",
                     "--upstream", f"127.0.0.1:{upstream_port}",
                     "--rules", "none",
                     "--transcripts", str(self.transcripts),
                     "--quarantine", str(workdir / "quarantine"),
                     "--tls-cert", "auto",
                     "--metrics", f"127.0.0.1:{self.metrics_port}",
                     # Room for every slot plus connections the proxy has not yet seen closed; the
                     # per-client limit stays at its default (50): the clients spread over 127/8.
                     "--connection-limit", str(sessions * 2 + 200),
                     "--drain-timeout", "15"]
        self.process = None

    def start(self, timeout=60):
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while not (listening(self.port) and listening(self.metrics_port)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the proxy did not listen on {self.port} (exit {self.process.poll()}): "
                                   f"{' '.join(self.argv)}; see {self.log_path}")
            time.sleep(0.05)

    def alive(self):
        return self.process.poll() is None

    def fds(self):
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def rss_kib(self, key="VmRSS"):
        for line in pathlib.Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        return 0

    def metrics(self):
        """{name{labels}: value} from /metrics, or {} when it does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as answer:
                text = answer.read().decode()
        except OSError:
            return {}
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    values[name] = float(value)
                except ValueError:
                    pass
        return values

    def active_connections(self):
        values = self.metrics()
        found = [v for k, v in values.items() if k.startswith("smtpscope_active_connections")]
        return sum(found) if found else None

    def terminate(self, timeout):
        """SIGTERM and wait; returns the exit code, or None when it had to be killed."""
        if self.process.poll() is not None:
            return self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None
