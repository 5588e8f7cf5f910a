"""pid_file (issue 11.4): initd follows an app that replaces itself, as PID 1
of fresh namespaces.

The app is tests/apps/reexec_app.py, which upgrades itself on USR2 the way
Unicorn does: the old master starts a new copy of itself with the listening
socket inherited, the new master writes the pid file and sends QUIT to the old
one, which finishes its requests and exits 0. initd must then take the new
master as its app: keep running, deliver (translated) signals to it, exit with
its status, keep probing it; and the new master's parent must be the ppidshim
(a child subreaper in this mode), never PID 1.

Every wait is bounded; every process a test starts is killed by pid at the end
(initd.stop() kills every descendant seen; the namespace dies with its PID 1).
"""
import json
import os
import signal
import subprocess
import threading
import time
import urllib.request

import pytest

from helpers import app, sleep_until, Initd, free_port


# ASSUMPTION (the lead documents the real figure): when the app exits and its
# pid file is missing, holds no pid yet, or names the app itself, initd waits
# up to this long for the file to name a successor before it exits with the
# app's status. Nginx and Unicorn write the file after the new master is
# ready, which can be just after the old master left.
PID_FILE_GRACE = 1.0

# How long initd may take to notice anything, grace included, on a loaded
# 2-core machine.
SLACK = PID_FILE_GRACE + 8.0


def get(port, path="/", timeout=5.0):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as reply:
        return reply.read().decode().strip()


class Web:
    """initd running reexec_app.py as the role "web" with a pid_file."""

    def __init__(self, tmp_path, *app_args, **role_extra):
        self.port = free_port()
        self.pid_file = str(tmp_path / "app.pid")
        role = {"command": app("reexec_app.py", str(self.port), self.pid_file, *app_args),
                "signals": {"TERM": "QUIT"}, "pid_file": self.pid_file}
        # A role key given as a function gets the port (a probe's URL needs it).
        role.update({key: value(self.port) if callable(value) else value
                     for key, value in role_extra.items()})
        path = tmp_path / "roles.json"
        path.write_text(json.dumps({"web": role}))
        self.initd = Initd(["--roles", str(path), "--role", "web"])
        self.clients = []

    def serving(self):
        """The pid (in the namespace) of the master answering, once one does."""
        def answer():
            if self.initd.proc.poll() is not None:
                raise AssertionError(f"initd exited {self.initd.proc.returncode}: "
                                     f"{self.initd.drain('err')[-5:]}")
            try:
                return int(get(self.port, timeout=1.0))
            except OSError:
                return None
        return sleep_until(answer, timeout=15)

    def host_pid(self, nspid):
        """Our pid for the process the namespace calls nspid (NSpid's last field)."""
        for pid in self.initd.descendants():
            try:
                with open(f"/proc/{pid}/status") as f:
                    line = next(ln for ln in f if ln.startswith("NSpid:"))
            except (OSError, StopIteration):
                continue
            if int(line.split()[-1]) == nspid:
                return pid
        raise AssertionError(f"no descendant of initd is pid {nspid} in its namespace")

    def exit_code(self, timeout=SLACK):
        try:
            return self.initd.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"initd still running after {timeout}s; stderr: "
                                 f"{self.initd.seen['err'][-10:]}") from None

    def stop(self):
        for client in self.clients:
            client.stop()
        self.initd.stop()


class Client:
    """Requests one after another from a thread, each with a bounded wait,
    until stopped or out of time or count: (pid served, None) or (None, error)."""

    def __init__(self, port, seconds=30.0, count=3000):
        self.port, self.results, self.done = port, [], threading.Event()
        self.deadline, self.count = time.monotonic() + seconds, count
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while (not self.done.is_set() and time.monotonic() < self.deadline
               and len(self.results) < self.count):
            try:
                self.results.append((int(get(self.port, "/?delay=0.05")), None))
            except Exception as error:  # noqa: BLE001 - any failure at all is what we count
                self.results.append((None, repr(error)))

    def stop(self):
        self.done.set()
        self.thread.join(timeout=10)

    def served(self):
        return [pid for pid, _ in self.results if pid is not None]

    def errors(self):
        return [error for _, error in self.results if error is not None]


@pytest.fixture
def web_factory(tmp_path):
    made = []

    def make(*app_args, **role_extra):
        web = Web(tmp_path, *app_args, **role_extra)
        made.append(web)
        return web
    yield make
    for web in made:
        web.stop()


def cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode(errors="replace")


def ppid(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(ln for ln in f if ln.startswith("PPid:")).split()[1])


def upgrade(web, old):
    """USR2 to initd (forwarded to the app): the new master's pid, once the
    old master has exited and the new one answers."""
    web.initd.kill(signal.SIGUSR2)
    web.initd.expect(f"reexec_app {old}: exit 0", timeout=15)
    new = web.serving()
    assert new != old
    return new


# --- (a) the upgrade itself --------------------------------------------------

@pytest.mark.parametrize("upgrades", [1, 2])
def test_usr2_upgrade_no_request_fails_and_initd_follows(web_factory, upgrades):
    web = web_factory()
    masters = [web.serving()]
    clients = [Client(web.port) for _ in range(3)]
    web.clients += clients
    time.sleep(0.3)  # requests in flight before the switch
    for _ in range(upgrades):
        masters.append(upgrade(web, masters[-1]))
        time.sleep(0.5)  # the old master is gone; requests go on to the new one
        assert web.initd.proc.poll() is None, "initd exited with the old master"
    for client in clients:
        client.stop()
    served = [pid for c in clients for pid in c.served()]
    errors = [e for c in clients for e in c.errors()]
    assert not errors, f"{len(errors)} of {len(served) + len(errors)} requests failed: {errors[:3]}"
    assert set(served) == set(masters), (served, masters)
    assert all(c.served()[-1] == masters[-1] for c in clients)
    with open(web.pid_file) as f:
        assert int(f.read()) == masters[-1]

    # The new master's parent is the ppidshim (a subreaper now), not initd.
    new = web.host_pid(masters[-1])
    parent = ppid(new)
    assert parent != web.initd.pid
    assert cmdline(parent).startswith("ppidshim:"), cmdline(parent)

    # The stop signal goes to the new master, translated; its exit is initd's.
    web.initd.kill(signal.SIGTERM)
    web.initd.expect(f"reexec_app {masters[-1]}: QUIT", timeout=10)
    assert web.exit_code() == 0


def test_exit_status_after_upgrade_is_the_successors(web_factory):
    """The successor's own exit code is the container's (7, not the old 0)."""
    web = web_factory()
    new = upgrade(web, web.serving())
    assert get(web.port, "/exit?code=7") == "exiting 7"
    assert web.exit_code() == 7
    assert f"reexec_app {new}: exit 7 (asked over HTTP)" in web.initd.drain("out")


def test_health_checks_follow_the_successor(web_factory):
    """Probes go on after the handover and act on the new master: it turns
    unhealthy, initd stops it with its translated stop signal and exits 69."""
    web = web_factory(health=lambda port: {"http": f"http://127.0.0.1:{port}/health",
                                           "interval": "200ms", "timeout": "2s", "retries": 2},
                      on_unhealthy="exit")
    new = upgrade(web, web.serving())
    time.sleep(1.0)
    assert web.initd.proc.poll() is None, "initd exited: the probe did not reach the new master?"
    get(web.port, "/sick")
    web.initd.expect(f"reexec_app {new}: QUIT", timeout=10)
    assert web.exit_code() == 69


# --- (b) the pid file appears late -------------------------------------------

def test_pid_file_written_after_the_old_master_left_is_followed(web_factory):
    """ASSUMES PID_FILE_GRACE: the new master writes the file 0.3 s after the
    old master exited (and no file exists meanwhile: USR2 renamed it .oldbin)."""
    web = web_factory("--late", "0.3")
    old = web.serving()
    web.initd.kill(signal.SIGUSR2)
    web.initd.expect(f"reexec_app {old}: exit 0", timeout=15)
    web.initd.expect("pid file written 0.3s after the old master left", timeout=10)
    time.sleep(0.5)
    assert web.initd.proc.poll() is None, "initd did not wait for the late pid file"
    new = web.serving()
    assert new != old
    web.initd.kill(signal.SIGTERM)
    web.initd.expect(f"reexec_app {new}: QUIT", timeout=10)
    assert web.exit_code() == 0


def test_pid_file_later_than_the_grace_is_not_waited_for(web_factory):
    """ASSUMES PID_FILE_GRACE: a file written 2 s after the grace is too late;
    initd exits with the old master's code (5), within the grace and slack."""
    web = web_factory("--late", str(PID_FILE_GRACE + 2.0), "--quit-code", "5")
    old = web.serving()
    web.initd.kill(signal.SIGUSR2)
    web.initd.expect(f"reexec_app {old}: exit 5", timeout=15)
    started = time.monotonic()
    assert web.exit_code(timeout=PID_FILE_GRACE + 1.9) == 5
    assert time.monotonic() - started < PID_FILE_GRACE + 1.9


# --- (c), (d), (e) nothing to follow: initd exits with the app's own code ----

def exits_with_the_apps_code(web, content):
    """Put content in the pid file, make the app exit 7: initd exits 7, and
    says why it did not follow, naming the file."""
    with open(web.pid_file, "w") as f:
        f.write(content)
    assert get(web.port, "/exit?code=7") == "exiting 7"
    assert web.exit_code() == 7
    err = web.initd.drain("err")
    assert any(web.pid_file in line for line in err), err


@pytest.mark.parametrize("content", ["", "\n", "not a pid\n", "12abc\n", "-5\n", "0\n",
                                     "99999999999999999999999\n", "\x00\xff\n", "3 4\n"])
def test_garbage_in_the_pid_file(web_factory, content):
    web = web_factory()
    web.serving()
    exits_with_the_apps_code(web, content)


def test_pid_file_naming_the_app_itself(web_factory):
    """The usual case: an app that writes a pid file and simply exits. The
    file still names it (dead, or a zombie not yet reaped)."""
    web = web_factory()
    me = web.serving()
    with open(web.pid_file) as f:
        assert int(f.read()) == me
    assert get(web.port, "/exit?code=7") == "exiting 7"
    assert web.exit_code() == 7


def test_pid_file_naming_a_dead_pid(web_factory):
    web = web_factory()
    web.serving()
    dead = int(get(web.port, "/deadpid"))  # a child of the app, already reaped
    exits_with_the_apps_code(web, f"{dead}\n")


@pytest.mark.parametrize("who", ["initd", "shim"])
def test_pid_file_naming_initd_or_the_shim(web_factory, who):
    web = web_factory()
    web.serving()
    pid = 1 if who == "initd" else int(get(web.port, "/ppid"))
    exits_with_the_apps_code(web, f"{pid}\n")


def test_pid_file_naming_a_process_entered_from_outside(web_factory):
    """Unrelated = not descended from the shim. A process `docker exec` (here:
    nsenter into initd's namespaces) started is live and in the container,
    but the app did not leave it behind: it is not adopted."""
    web = web_factory()
    web.serving()
    intruder = subprocess.Popen(["nsenter", "--target", str(web.initd.pid), "--pid", "--mount",
                                 "--", "sh", "-c", "echo $$; exec sleep 60"],
                                stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        nspid = int(intruder.stdout.readline())
        exits_with_the_apps_code(web, f"{nspid}\n")
    finally:
        for pid in [*_children(intruder.pid), intruder.pid]:
            _kill(pid)
        intruder.wait(timeout=10)


def test_pid_file_naming_a_health_probe(web_factory, tmp_path):
    """A process initd started as a probe is never the app, even when the
    pid file names it (here the probe writes its own pid there)."""
    pid_file = str(tmp_path / "app.pid")
    probe = ["sh", "-c", f"echo $$ > {pid_file}.probe && mv {pid_file}.probe {pid_file} "
             "&& exec sleep 30"]
    web = web_factory(health={"exec": probe, "interval": "200ms", "timeout": "20s"})
    assert web.pid_file == pid_file
    me = web.serving()

    def probe_wrote():
        with open(web.pid_file) as f:
            text = f.read().strip()
        return text and int(text) != me
    sleep_until(probe_wrote, timeout=10)
    assert get(web.port, "/exit?code=7") == "exiting 7"
    assert web.exit_code() == 7


# --- (f) a successor that dies during the handover -----------------------------

def test_successor_dying_after_the_handover(web_factory):
    """Adopted, then dead: its status (9) is the container's."""
    web = web_factory("--successor-dies", "1.0")
    old = web.serving()
    web.initd.kill(signal.SIGUSR2)
    web.initd.expect(f"reexec_app {old}: exit 0", timeout=15)
    time.sleep(0.3)
    assert web.initd.proc.poll() is None, "initd did not follow the successor"
    web.initd.expect("successor dying after the handover: exit 9", timeout=10)
    assert web.exit_code() == 9


def test_successor_dying_before_the_old_master_quits(web_factory):
    """Unicorn's "reexec-ed child died": the old master stays master, restores
    the pid file, and goes on serving; initd goes on too and later exits with
    it. The dead successor (the old master's child) leaves no zombie."""
    web = web_factory("--successor-fails")
    old = web.serving()
    web.initd.kill(signal.SIGUSR2)
    web.initd.expect("successor failing before the handover: exit 9", timeout=15)
    web.initd.expect(f"reexec_app {old}: new master", timeout=10)
    time.sleep(0.5)
    assert web.initd.proc.poll() is None
    assert web.serving() == old
    web.initd.kill(signal.SIGTERM)
    web.initd.expect(f"reexec_app {old}: QUIT", timeout=10)
    assert web.exit_code() == 0


def test_successor_dying_as_the_old_master_exits(web_factory):
    """A race: the successor exits 9 right after QUITting the old master.
    Adopted then dead (9), or dead before initd looked (the old master's 0):
    either is right; hanging, or any other code, is not."""
    web = web_factory("--successor-dies", "0")
    old = web.serving()
    web.initd.kill(signal.SIGUSR2)
    web.initd.expect(f"reexec_app {old}: exit 0", timeout=15)
    assert web.exit_code() in (0, 9)


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
