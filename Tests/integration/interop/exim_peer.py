"""Exim 4 for the interop matrix, as an upstream or as a client, unpacked by tools/setup-peers.

Exim conflicts with the postfix package, so it is not installed: the binary runs from the unpacked
tree with `-C CONFIG` (the test's own configuration, spool and logs under /tmp). Three things the
unpacked binary needs: `exim_path` (it re-executes itself for deliveries, by default from
/usr/sbin/exim4), the user Debian-exim compiled in as its user (root never delivers), and a spool
that user owns.

- Upstream: a daemon on a free loopback port with PIPELINING, CHUNKING, STARTTLS (the test
  certificate) and AUTH PLAIN/LOGIN for one user. It adds no Received: field and stores each
  message as a file, as it came over the wire (LF line ends). An ACL on each stage writes
  "WITNESS VERB" to its log with the process id of the connection: its count of the commands it
  received (EHLO/HELO, STARTTLS, AUTH, MAIL, RCPT, QUIT; none is run for DATA and BDAT alike).
- Client: messages are queued with `-odq`, then one `-qqf -v` queue run (routing first, so that
  one connection carries every message) delivers them through the proxy as smarthost (manualroute); `-v` prints the dialogue
  ("SMTP>> CMD", "SMTP<< REPLY"), its witness of the client leg. It pipelines the end of data with
  QUIT and uses BDAT, as the proxy always offers CHUNKING.
"""
import os
import pwd
import re
import shutil
import subprocess

from interop_support import (AUTH_PASSWORD, AUTH_USER, COMMAND_TIMEOUT, DELIVERY_WAIT, PEERS_CACHE, Dialogue, crlf,
                             free_port, missing_peer, peer_folder, require_binary, require_root, wait_for_port,
                             wait_until)

EXIM = PEERS_CACHE / "usr" / "sbin" / "exim4"
SETUP = "tools/setup-peers (Exim unpacked into /var/cache/smtpscope-peers)"
USER = "Debian-exim"


def _require():
    require_root("Exim")
    require_binary(EXIM, "Exim", SETUP)
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        missing_peer(f"user {USER}", SETUP)


def _folder(name):
    user = _require()
    directory = peer_folder(f"exim-{name}")
    for sub in ("spool", "log", "messages"):
        (directory / sub).mkdir()
        os.chown(directory / sub, user.pw_uid, user.pw_gid)
    return directory


def _common(directory, hostname):
    return f"""exim_path = {EXIM}
exim_user = {USER}
exim_group = {USER}
spool_directory = {directory}/spool
log_file_path = {directory}/log/%slog
primary_hostname = {hostname}
keep_environment =
host_lookup =
rfc1413_hosts =
log_selector = +pid +smtp_connection +received_recipients
"""


AUTHENTICATORS = """
begin authenticators
plain:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = ${if and {{eq{$auth2}{USER}}{eq{$auth3}{PASSWORD}}}}
  server_set_id = $auth2
login:
  driver = plaintext
  public_name = LOGIN
  server_prompts = <| Username: | Password:
  server_condition = ${if and {{eq{$auth1}{USER}}{eq{$auth2}{PASSWORD}}}}
  server_set_id = $auth1
""".replace("USER", AUTH_USER).replace("PASSWORD", AUTH_PASSWORD)

WITNESS_ACLS = ["helo", "starttls", "auth", "mail", "rcpt", "quit"]


class EximUpstream:
    name = "exim"
    offers_tls = True
    offers_auth = True
    witnessed = {"EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT", "QUIT"}

    def __init__(self, processes, tls_cert):
        self.directory = _folder("upstream")
        self.port = free_port()
        acl_options = "".join(f"acl_smtp_{stage} = witness\n" for stage in WITNESS_ACLS)
        config = _common(self.directory, "upstream.exim.test") + f"""daemon_smtp_ports = {self.port}
local_interfaces = 127.0.0.1
received_header_text =
tls_advertise_hosts = *
tls_certificate = {tls_cert[0]}
tls_privatekey = {tls_cert[1]}
auth_advertise_hosts = *
{acl_options}
begin acl
witness:
  warn logwrite = WITNESS ${{uc:${{extract{{1}}{{ }}{{$smtp_command}}}}}}
  accept

begin routers
store:
  driver = accept
  transport = store

begin transports
store:
  driver = appendfile
  file = {self.directory}/messages/${{message_exim_id}}.eml
  user = {USER}
  message_prefix =
  message_suffix =
  check_string =
  escape_string =
  return_path_add = false
  envelope_to_add = false
  delivery_date_add = false
  mode = 0644

""" + AUTHENTICATORS
        self.config = self.directory / "exim.conf"
        self.config.write_text(config)
        self.log = self.directory / "log" / "mainlog"
        # -q5s: a delivery the daemon could not start at once is retried within seconds.
        self.process = processes.start([str(EXIM), "-C", str(self.config), "-bdf", "-q5s"], "exim upstream")
        self.processes = processes
        wait_for_port("127.0.0.1", self.port)
        self.address = ("127.0.0.1", self.port)

    def stop(self):
        self.processes.stop(self.process)
        shutil.rmtree(self.directory, ignore_errors=True)

    def log_text(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def mark(self):
        return (len(self.log_text()), {p.name for p in (self.directory / "messages").iterdir()})

    def received(self, mark, count, timeout=None):
        _, before = mark
        folder = self.directory / "messages"

        # appendfile writes ID.eml beside a lock file (ID.eml.lock.HOST...) that it removes when the
        # message is complete: only a .eml with no lock left is a message received.
        def messages():
            names = [p for p in folder.iterdir() if p.name not in before]
            writing = any(".lock" in p.name for p in names)
            return [p for p in names if p.name.endswith(".eml")], writing

        def new():
            files, writing = messages()
            return files if len(files) >= count and not writing else None

        files = wait_until(new, timeout) or messages()[0]
        files.sort(key=lambda p: p.stat().st_mtime)
        return [crlf(p.read_bytes()) for p in files]

    def sessions(self, mark, timeout=DELIVERY_WAIT):
        """Each SMTP connection since mark (by process id) as a dict of the commands Exim's ACLs saw;
        waits until every connection has ended."""
        offset, _ = mark

        def complete():
            # The daemon logs each connection; the process serving it logs how it ended.
            text = self.log_text()[offset:]
            opened = len(re.findall(r"SMTP connection from .*TCP/IP connection count", text))
            ended = len(re.findall(r"SMTP connection from .*(?:closed by|lost|dropped)|"
                                   r"unexpected disconnection|SMTP command timeout", text))
            return (text,) if opened and ended >= opened else None

        found = wait_until(complete, timeout)
        text = found[0] if found else self.log_text()[offset:]
        sessions = {}
        for pid, verb in re.findall(r"\[(\d+)\] WITNESS (\S+)", text):
            counts = sessions.setdefault(pid, {})
            counts[verb] = counts.get(verb, 0) + 1
        return list(sessions.values())

    def quit_received(self, mark):
        return [s.get("QUIT", 0) > 0 for s in self.sessions(mark)]


class EximClient:
    name = "exim"

    def __init__(self, processes, proxy_port, tls):
        self.directory = _folder("client")
        tls_option = "hosts_require_tls = *\n  tls_verify_certificates =" if tls else "hosts_avoid_tls = *"
        config = _common(self.directory, "client.exim.test") + f"""
begin routers
smarthost:
  driver = manualroute
  route_list = * 127.0.0.1::{proxy_port}
  transport = remote_smtp
  self = send
  no_more

begin transports
remote_smtp:
  driver = smtp
  {tls_option}

# A failed delivery is deferred, never bounced (a bounce would be one more session through the proxy).
begin retry
* * F,1h,10m
"""
        self.config = self.directory / "exim.conf"
        self.config.write_text(config)
        self.proxy_port = proxy_port

    def stop(self):
        shutil.rmtree(self.directory, ignore_errors=True)

    def exim(self, *args, stdin=None):
        return subprocess.run([str(EXIM), "-C", str(self.config), *args], input=stdin, capture_output=True,
                              timeout=COMMAND_TIMEOUT)

    def send(self, messages):
        for octets in messages:
            queued = self.exim("-odq", "-i", "-f", "alice@client.test", "bob@example.org",
                               stdin=octets.replace(b"\r\n", b"\n"))
            assert queued.returncode == 0, f"exim -odq failed: {queued.stderr.decode(errors='replace')}"
        # -qq: route every message first, so that one connection carries them all.
        run = self.exim("-v", "-qqf")
        output = (run.stdout + run.stderr).decode(errors="replace")
        log = (self.directory / "log" / "mainlog")
        text = log.read_text(errors="replace") if log.exists() else ""
        delivered = re.findall(r" => bob@example\.org .* C=\"250[ -]", text)
        deferred = re.findall(r" == bob@example\.org .*", text)
        succeeded = len(delivered) == len(messages) and not deferred
        return succeeded, self.dialogue(output), f"{text[-3000:]}\n--- exim -v -qf:\n{output[-3000:]}"

    @staticmethod
    def dialogue(output):
        """Exim's -v account. It covers the first message of each connection only: the messages a
        connection carries after it are delivered by other processes (`-MC`), which print nothing."""
        commands, replies = [], []
        for line in output.splitlines():
            match = re.match(r"^\s*SMTP(>>|\|>|\+>|<<) (.*)$", line)
            if not match:
                continue
            direction, text = match.groups()
            if direction == "<<":
                if text[:3].isdigit():
                    replies.append(int(text[:3]))  # one per reply: continuation lines are indented
            else:
                commands.append(text.split()[0].upper() if text.split() else "")
        return Dialogue(commands, replies, "STARTTLS" in commands, partial=True)
