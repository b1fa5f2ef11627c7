"""A three-namespace lab for transparent mode: client -- gateway -- server, on veth pairs.

    client  192.0.2.10/24     2001:db8:1::10/64   (default route via the gateway)
    gateway 192.0.2.1/24      2001:db8:1::1/64    (c-side, veth g0)
            198.51.100.1/24   2001:db8:2::1/64    (s-side, veth g1); forwarding on
    server  198.51.100.25/24  2001:db8:2::25/64   (default route via the gateway)

Only documentation ranges (RFC 5737, RFC 3849), only inside namespaces this lab creates and deletes.
The gateway's firewall and routing come from the files in tools/deploy/, so those are what is tested.
"""
import json
import os
import pathlib
import secrets
import subprocess
import time

REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]
DEPLOY = REPO_ROOT / "tools" / "deploy"
COMMAND_TIMEOUT = 60
START_TIMEOUT = 30

CLIENT = {"ipv4": "192.0.2.10", "ipv6": "2001:db8:1::10"}
GATEWAY_INSIDE = {"ipv4": "192.0.2.1", "ipv6": "2001:db8:1::1"}
GATEWAY_OUTSIDE = {"ipv4": "198.51.100.1", "ipv6": "2001:db8:2::1"}
SERVER = {"ipv4": "198.51.100.25", "ipv6": "2001:db8:2::25"}
PREFIX = {"ipv4": 24, "ipv6": 64}
FAMILIES = ("ipv4", "ipv6")
PROXY_PORT = 10025  # the port the shipped rulesets name; free, since the gateway namespace is new


def run(argv, check=True, timeout=COMMAND_TIMEOUT, stdin=None):
    completed = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, input=stdin)
    if check and completed.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, argv))} exited {completed.returncode}:\n"
                             f"{completed.stdout}{completed.stderr}")
    return completed


def hostport(host, port):
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Lab:
    def __init__(self):
        tag = f"{os.getpid()}-{secrets.token_hex(3)}"
        self.client = f"smtpscope-c-{tag}"
        self.gateway = f"smtpscope-g-{tag}"
        self.server = f"smtpscope-s-{tag}"
        self.created = []

    @property
    def namespaces(self):
        return [self.client, self.gateway, self.server]

    def exec(self, namespace, *argv):
        return ["ip", "netns", "exec", namespace, *map(str, argv)]

    def run(self, namespace, *argv, check=True, timeout=COMMAND_TIMEOUT, stdin=None):
        return run(self.exec(namespace, *argv), check=check, timeout=timeout, stdin=stdin)

    def create_first(self):
        """The first namespace, alone: its failure means no CAP_NET_ADMIN (the caller skips)."""
        completed = run(["ip", "netns", "add", self.client], check=False)
        if completed.returncode == 0:
            self.created.append(self.client)
        return completed

    def build(self):
        for namespace in (self.gateway, self.server):
            run(["ip", "netns", "add", namespace])
            self.created.append(namespace)
        for namespace in self.namespaces:
            run(["ip", "-n", namespace, "link", "set", "lo", "up"])
        # Made inside the gateway, the veth names cannot clash with the host's interfaces.
        run(["ip", "-n", self.gateway, "link", "add", "g0", "type", "veth", "peer", "name", "c0", "netns", self.client])
        run(["ip", "-n", self.gateway, "link", "add", "g1", "type", "veth", "peer", "name", "s0", "netns", self.server])
        for namespace, interface, addresses in (
            (self.client, "c0", CLIENT), (self.gateway, "g0", GATEWAY_INSIDE),
            (self.gateway, "g1", GATEWAY_OUTSIDE), (self.server, "s0", SERVER),
        ):
            for family in FAMILIES:
                # nodad: the addresses are usable at once, not after duplicate address detection.
                extra = ["nodad"] if family == "ipv6" else []
                run(["ip", "-n", namespace, "addr", "add", f"{addresses[family]}/{PREFIX[family]}", "dev", interface, *extra])
            run(["ip", "-n", namespace, "link", "set", interface, "up"])
        for namespace, gateway in ((self.client, GATEWAY_INSIDE), (self.server, GATEWAY_OUTSIDE)):
            run(["ip", "-n", namespace, "-4", "route", "add", "default", "via", gateway["ipv4"]])
            run(["ip", "-n", namespace, "-6", "route", "add", "default", "via", gateway["ipv6"]])
        self.run(self.gateway, "sysctl", "-q", "-p", DEPLOY / "sysctl-smtpscope.conf")

    def load_nft(self, name):
        self.run(self.gateway, "nft", "-f", DEPLOY / name)

    def load_iptables(self, name):
        """One iptables-restore file, loaded for IPv4 and for IPv6."""
        rules = (DEPLOY / name).read_text()
        for restore in ("iptables-restore", "ip6tables-restore"):
            self.run(self.gateway, restore, "--noflush", stdin=rules)

    def load_firewall(self, firewall, flavour):
        """The shipped ruleset of one flavour (redirect, tproxy) for nftables or iptables."""
        if firewall == "nftables":
            self.load_nft(f"nftables-{flavour}.nft")
        else:
            self.load_iptables(f"iptables-{flavour}.rules")

    def tproxy_routing(self):
        self.run(self.gateway, "sh", DEPLOY / "tproxy-routing.sh", "up")

    def listening(self, namespace, port, host=None):
        """True when a TCP socket listens on the port (on `host`, when given) in the namespace."""
        wanted = f":{port}" if host is None else hostport(host, port)
        completed = self.run(namespace, "ss", "-ltnH", check=False)
        return any(len(fields) > 3 and fields[3].endswith(wanted)
                   for fields in (line.split() for line in completed.stdout.splitlines()))

    def wait_listening(self, namespace, port, process=None, host=None, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while not self.listening(namespace, port, host):
            if (process is not None and process.poll() is not None) or time.monotonic() > deadline:
                raise AssertionError(f"nothing listens on {hostport(host or '*', port)} in {namespace}")
            time.sleep(0.1)

    def destroy(self):
        """Stops what still runs inside the namespaces (only this lab's processes live there),
        then deletes them."""
        for namespace in self.created:
            pids = run(["ip", "netns", "pids", namespace], check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
        for namespace in reversed(self.created):
            run(["ip", "netns", "del", namespace], check=False)
        self.created = []


def read_records(directory):
    records = []
    for path in sorted(pathlib.Path(directory).rglob("*.jsonl")):
        # A last line without its newline is a record still being written (see proxy_support).
        for line in path.read_text(errors="replace").split("\n")[:-1]:
            if line.strip():
                records.append(json.loads(line))
    return records


def wait_for_records(directory, count, timeout=20):
    deadline = time.monotonic() + timeout
    records = read_records(directory)
    while len(records) < count and time.monotonic() < deadline:
        time.sleep(0.1)
        records = read_records(directory)
    return records


def sink_dumps(directory, count, containing="", timeout=20):
    """smtp-sink's dump files (each starts with X-Client-Addr, the address the server saw), once
    `count` of them hold `containing`: a dump file appears before its last line is written."""
    deadline = time.monotonic() + timeout
    while True:
        dumps = [p.read_text(errors="replace") for p in sorted(pathlib.Path(directory).iterdir()) if p.is_file()]
        if sum(containing in dump for dump in dumps) >= count or time.monotonic() > deadline:
            return dumps
        time.sleep(0.1)


def client_address(dump):
    """The client address smtp-sink saw (its X-Client-Addr; IPv6 with Postfix's `ipv6:` prefix)."""
    for line in dump.splitlines():
        if line.startswith("X-Client-Addr: "):
            address = line.split(": ", 1)[1].strip()
            return address[5:] if address.lower().startswith("ipv6:") else address
    return None
