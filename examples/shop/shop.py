"""shop: one code base, two roles, written the way production apps behave on
signals, so that the image initd runs is a template to copy (standard
library only, Python 3.11).

    python3 shop.py web      an HTTP server (port from /etc/shop.conf)
    python3 shop.py worker   a job worker: forks a child per job from a queue dir
    python3 shop.py healthz  exit 0 when the web role's /healthz answers 200, else 1
                             (a probe command for engines that cannot GET a URL)

Signals, as Unicorn (web) and Resque (worker) define them:

    SIGQUIT  graceful stop. web: stop accepting, finish every request in
             flight, exit 0. worker: finish the current job, leave the rest
             queued, exit 0.
    SIGTERM  immediate stop (web dies of it at once; worker stops its job's
             child and exits 143). `docker stop` and the kubelet send SIGTERM:
             the roles map it to QUIT ("signals": {"TERM": "QUIT"}), so a
             stop is graceful without changing the app.
    SIGHUP   re-read /etc/shop.conf.

Every event is one flushed line on stdout, `shop[web] ...`, for the logs and
for the tests.

web endpoints: /  the page `container/compile` rendered at build time;
/healthz  200 "ok", or 503 once /break was requested (to see a health check
act); /slow?seconds=N  answers after N seconds (a request in flight);
/whoami  pid, ppid and hostname as the app sees them.
"""
import http.server
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse

CONF = os.environ.get("SHOP_CONF", "/etc/shop.conf")
APP_DIR = os.path.dirname(os.path.abspath(__file__))
role = "shop"


def wait_for(signals):
    """Block SIGNALS (to read them with sigwait/sigtimedwait), and undo an
    inherited SIG_IGN first: a blocked but ignored signal is discarded, and
    shells start background jobs with SIGQUIT and SIGINT ignored."""
    for sig in signals:
        if sig != signal.SIGCHLD:
            signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    return signals


def say(message):
    # One write per line, flushed: the container's log is the app's stdout.
    os.write(1, f"shop[{role}] {message}\n".encode())


def read_conf(path=CONF):
    """key = value lines; '#' starts a comment."""
    conf = {"port": "8080", "queue": "/var/lib/shop/queue", "greeting": "hello"}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                key, _, value = line.partition("=")
                conf[key.strip()] = value.strip()
    return conf


def revision():
    try:
        with open(os.path.join(APP_DIR, "REVISION"), encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return "unknown"


def introduce(extra=""):
    say(f"started: pid={os.getpid()} ppid={os.getppid()} hostname={socket.gethostname()}"
        f" revision={revision()}{extra}")


# --- web ------------------------------------------------------------------------

class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "shop"

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path == "/healthz":
            if self.server.broken:
                return self.reply(503, "broken\n")
            return self.reply(200, "ok\n")
        if url.path == "/break":
            self.server.broken = True
            say("/break: /healthz answers 503 from now on")
            return self.reply(200, "broken\n")
        if url.path == "/slow":
            seconds = float(query.get("seconds", ["1"])[0])
            say(f"request in flight: {self.path}")
            time.sleep(seconds)
            say(f"request done: {self.path}")
            return self.reply(200, f"slept {seconds:g}s\n")
        if url.path == "/whoami":
            return self.reply(200, json.dumps({"pid": os.getpid(), "ppid": os.getppid(),
                                               "hostname": socket.gethostname()}) + "\n")
        if url.path == "/":
            with open(os.path.join(APP_DIR, "public", "index.html"), "rb") as f:
                return self.reply(200, f.read(), "text/html")
        return self.reply(404, "not found\n")

    def reply(self, status, body, content_type="text/plain"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass  # one line per event of ours is enough


class Server(http.server.ThreadingHTTPServer):
    # Request threads are joined by server_close(): that is what lets a
    # graceful stop finish every request in flight (the base class makes
    # them daemon threads, which a process exit would cut short).
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True
    broken = False


def web():
    conf = read_conf()
    # Block the signals we wait for before any thread exists, so each one
    # is read by sigwait below and never interrupts a request thread.
    waited = wait_for({signal.SIGQUIT, signal.SIGHUP})
    server = Server(("", int(conf["port"])), Handler)
    threading.Thread(target=server.serve_forever, name="accept").start()
    introduce(f" listening on :{conf['port']}")
    while True:
        sig = signal.sigwait(waited)
        if sig == signal.SIGHUP:
            conf = read_conf()
            say(f"got SIGHUP: reloaded {CONF} (greeting={conf['greeting']})")
            continue
        say("got SIGQUIT: graceful stop: no new connections, finishing requests in flight")
        server.shutdown()       # the accept loop ends: nothing new is taken
        server.server_close()   # closes the socket, joins every request thread
        say("graceful stop complete: exit 0")
        return 0


# --- worker ---------------------------------------------------------------------

def next_job(queue):
    try:
        names = sorted(n for n in os.listdir(queue) if n.endswith(".job"))
    except FileNotFoundError:
        return None
    return names[0] if names else None


def perform(path):
    """The job itself, in the forked child (as Resque forks one per job)."""
    with open(path, encoding="utf-8") as f:
        seconds = float(f.read().strip() or "1")
    time.sleep(seconds)


def worker():
    conf = read_conf()
    queue = conf["queue"]
    done = os.path.join(os.path.dirname(queue), "done")
    os.makedirs(done, exist_ok=True)
    waited = wait_for({signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD})
    introduce(f" queue={queue}")
    stopping = False
    while not stopping:
        name = next_job(queue)
        if name is None:
            sig = signal.sigtimedwait(waited, 0.2)
            info = sig and sig.si_signo
            if info == signal.SIGQUIT:
                say("got SIGQUIT: no job running: exit 0")
                return 0
            if info == signal.SIGTERM:
                say("got SIGTERM: exit 143")
                return 143
            if info == signal.SIGHUP:
                conf = read_conf()
                say(f"got SIGHUP: reloaded {CONF}")
            continue
        job = os.path.join(queue, name)
        working = os.path.join(os.path.dirname(queue), name + ".working")
        try:
            os.rename(job, working)  # claim it: another worker cannot take it too
        except FileNotFoundError:
            continue
        pid = os.fork()
        if pid == 0:
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
            try:
                perform(working)
                os._exit(0)
            except BaseException:  # noqa: BLE001 - a job's failure is its exit status
                os._exit(1)
        say(f"job {name}: started in child pid={pid}")
        while True:
            sig = signal.sigtimedwait(waited, 1.0)
            finished, status = os.waitpid(pid, os.WNOHANG)
            if finished:
                break
            if sig and sig.si_signo == signal.SIGQUIT and not stopping:
                stopping = True
                say(f"got SIGQUIT: finishing job {name}, then exit 0")
            elif sig and sig.si_signo == signal.SIGTERM:
                say(f"got SIGTERM: stopping job {name} now")
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
                os.rename(working, os.path.join(done, name + ".failed"))
                return 143
            elif sig and sig.si_signo == signal.SIGHUP:
                say(f"got SIGHUP: reloaded {CONF}")
        code = os.waitstatus_to_exitcode(status)
        os.rename(working, os.path.join(done, name if code == 0 else name + ".failed"))
        say(f"job {name}: finished, exit {code}")
    left = len([n for n in os.listdir(queue) if n.endswith(".job")])
    say(f"graceful stop complete: {left} job(s) left queued: exit 0")
    return 0


def healthz():
    import urllib.request
    url = f"http://127.0.0.1:{read_conf()['port']}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 0 if response.status == 200 else 1
    except OSError as e:  # refused, timed out, or an HTTP error status
        print(f"{url}: {e}", file=sys.stderr)
        return 1


def main(argv):
    global role
    if len(argv) != 2 or argv[1] not in ("web", "worker", "healthz"):
        print("usage: shop.py web|worker|healthz", file=sys.stderr)
        return 2
    role = argv[1]
    return {"web": web, "worker": worker, "healthz": healthz}[role]()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
