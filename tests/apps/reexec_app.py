"""An HTTP app that replaces itself on USR2 the way Unicorn does (standard library only).

usage: reexec_app.py PORT PIDFILE [--delay S] [--quit-code N] [--late S]
                     [--successor-dies S] [--successor-fails]

Master: listens on 127.0.0.1:PORT, writes its pid to PIDFILE once listening.
  GET /             -> "PID\n" after --delay (or ?delay=S) seconds, to keep requests in flight
  GET /health       -> 200 "ok", or 503 after GET /sick
  GET /exit?code=N  -> answers, then exits N at once
  GET /ppid         -> our parent's pid, as this pid namespace numbers it
  GET /deadpid      -> the pid (as this pid namespace numbers it) of a child already reaped
  USR2  Unicorn's binary upgrade: PIDFILE is renamed PIDFILE.oldbin, and a new copy of this
        program is started as our child with the listening socket inherited (its fd number in
        REEXEC_FD, as Unicorn's UNICORN_FD; our pid in REEXEC_OLD), so no connection is refused
        during the switch: both masters accept from the one kernel queue until we stop.
        The new master, once serving, writes PIDFILE and sends QUIT to the old one.
        If the new master dies while we are still master, PIDFILE.oldbin is renamed back
        (Unicorn: "reexec-ed child died") and we go on serving.
  QUIT  stop accepting, finish every request in flight, exit --quit-code (default 0).
  TERM  the default action: death by SIGTERM at once (143 to an init).

Options for the new master only (they travel with argv, so they apply to every successor):
  --late S            QUIT the old master first, wait until it is gone, then write PIDFILE
                      S seconds later (the pid file appearing after the app's exit).
  --successor-dies S  write PIDFILE, QUIT the old master, exit 9 S seconds later.
  --successor-fails   write PIDFILE, then exit 9 at once without QUITting the old master.

Every event is one line on stdout: "reexec_app PID: ...".
"""
import http.server
import os
import signal
import socket
import socketserver
import sys
import threading
import time
import urllib.parse

HANDLED = {signal.SIGUSR2, signal.SIGQUIT, signal.SIGCHLD}


def say(text):
    print(f"reexec_app {os.getpid()}: {text}", flush=True)


def parse(argv):
    opts = {"port": int(argv[0]), "pidfile": argv[1], "delay": 0.0, "quit_code": 0,
            "late": None, "dies": None, "fails": False}
    rest = argv[2:]
    while rest:
        key = rest.pop(0)
        if key == "--delay":
            opts["delay"] = float(rest.pop(0))
        elif key == "--quit-code":
            opts["quit_code"] = int(rest.pop(0))
        elif key == "--late":
            opts["late"] = float(rest.pop(0))
        elif key == "--successor-dies":
            opts["dies"] = float(rest.pop(0))
        elif key == "--successor-fails":
            opts["fails"] = True
        else:
            sys.exit(f"reexec_app: unknown option {key}")
    return opts


def write_pidfile(path, content):
    # Written aside and renamed, so a reader never sees a half-written file.
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(content)
    os.rename(tmp, path)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    # server_close() joins the request threads: QUIT finishes what is in flight.
    daemon_threads = False
    block_on_close = True
    sick = False


class Handler(http.server.BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so a client never holds a
    # keep-alive connection to a master that has stopped accepting.
    opts = None

    def log_message(self, *args):
        pass

    def reply(self, code, body):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/":
            time.sleep(float(query.get("delay", self.opts["delay"])))
            self.reply(200, f"{os.getpid()}\n")
        elif url.path == "/health":
            self.reply(503 if self.server.sick else 200, "sick\n" if self.server.sick else "ok\n")
        elif url.path == "/sick":
            self.server.sick = True
            self.reply(200, "sick from now on\n")
        elif url.path == "/ppid":
            self.reply(200, f"{os.getppid()}\n")
        elif url.path == "/deadpid":
            pid = os.posix_spawn("/bin/true", ["true"], os.environ, setsigmask=())
            os.waitpid(pid, 0)  # reaped here: a pid nobody in this namespace has any more
            self.reply(200, f"{pid}\n")
        elif url.path == "/exit":
            code = int(query.get("code", "0"))
            self.reply(200, f"exiting {code}\n")
            self.connection.shutdown(socket.SHUT_RDWR)
            say(f"exit {code} (asked over HTTP)")
            os._exit(code)
        else:
            self.reply(404, "no such page\n")


def serve(opts, sock):
    Handler.opts = opts
    server = Server(("127.0.0.1", opts["port"]), Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    return server, thread


def listening(opts):
    inherited = os.environ.pop("REEXEC_FD", None)
    if inherited is not None:
        sock = socket.socket(fileno=int(inherited))
        sock.set_inheritable(False)
        return sock
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", opts["port"]))
    sock.listen(128)
    return sock


def spawn_successor(sock):
    env = dict(os.environ, REEXEC_FD=str(sock.fileno()), REEXEC_OLD=str(os.getpid()))
    sock.set_inheritable(True)
    try:
        # posix_spawn is fork + exec: the new master is our child, as Unicorn's is.
        return os.posix_spawn(sys.executable, [sys.executable, *sys.argv], env, setsigmask=())
    finally:
        sock.set_inheritable(False)


def handover(opts, old):
    """The new master's side, once it is serving."""
    pidfile = opts["pidfile"]
    if opts["late"] is not None:
        os.kill(old, signal.SIGQUIT)
        deadline = time.monotonic() + 30
        while os.getppid() == old and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(opts["late"])
        write_pidfile(pidfile, f"{os.getpid()}\n")
        say(f"pid file written {opts['late']}s after the old master left")
        return
    write_pidfile(pidfile, f"{os.getpid()}\n")
    if opts["fails"]:
        say("successor failing before the handover: exit 9")
        os._exit(9)
    os.kill(old, signal.SIGQUIT)
    say(f"new master; QUIT sent to {old}")
    if opts["dies"] is not None:
        time.sleep(opts["dies"])
        say("successor dying after the handover: exit 9")
        os._exit(9)


def main():
    opts = parse(sys.argv[1:])
    # Blocked before any thread exists, so every thread inherits the mask and
    # the main thread alone takes these signals, with sigwait.
    signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
    sock = listening(opts)
    old = os.environ.pop("REEXEC_OLD", None)
    if old is None:
        # Before serving: a test that sees an answer may then overwrite the
        # file, and must not race this write.
        write_pidfile(opts["pidfile"], f"{os.getpid()}\n")
    server, thread = serve(opts, sock)
    if old is None:
        say(f"master listening on 127.0.0.1:{opts['port']}")
    else:
        say(f"new master serving (old master {old})")
        handover(opts, int(old))
    successor = None
    while True:
        sig = signal.sigwait(HANDLED)
        if sig == signal.SIGUSR2 and successor is None:
            try:
                os.rename(opts["pidfile"], opts["pidfile"] + ".oldbin")
            except FileNotFoundError:
                pass
            successor = spawn_successor(sock)
            say(f"USR2: started new master {successor}")
        elif sig == signal.SIGCHLD and successor is not None:
            pid, status = os.waitpid(successor, os.WNOHANG)
            if pid:
                say(f"new master {successor} died ({os.waitstatus_to_exitcode(status)}); "
                    "still master")
                successor = None
                try:
                    os.rename(opts["pidfile"] + ".oldbin", opts["pidfile"])
                except FileNotFoundError:
                    pass
        elif sig == signal.SIGQUIT:
            say("QUIT: no longer accepting, finishing requests in flight")
            server.shutdown()       # serve_forever returns: no more accept()
            server.server_close()   # joins every request thread
            thread.join()
            say(f"exit {opts['quit_code']}")
            sys.stdout.flush()
            os._exit(opts["quit_code"])


if __name__ == "__main__":
    main()
