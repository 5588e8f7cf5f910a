"""A tiny HTTP app for probe tests: prints its port, then serves
/ok 200 "ok", /status/N status N, /redirect 302, /body/TEXT 200 TEXT,
/big 200 with 1 MiB, /hang (reads the request, never answers; prints
"HANG" when one arrives).

argv: [HOST [PORT]] (PORT 0, the default: any free port). Environment, for
the PID 1 health tests:
  HTTP_APP_UNHEALTHY=PATH  /health answers 503 with PATH's text while PATH
                           exists, else 200 "ok"
  HTTP_APP_SIGNALS=1       the main thread takes USR1, TERM and INT with
                           sigwaitinfo (blocked in every thread, so none is
                           lost to a busy handler thread) and prints
                           "SIG NAME MONOTONIC" at once; TERM and INT exit 0
                           after HTTP_APP_TERM_DELAY seconds (default 0)
"""
import http.server
import os
import signal
import sys
import threading
import time

UNHEALTHY = os.environ.get("HTTP_APP_UNHEALTHY")


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.path
        if path == "/hang":
            print("HANG", flush=True)
            time.sleep(3600)
        if path == "/health" and UNHEALTHY:
            try:
                with open(UNHEALTHY, "rb") as f:
                    self.reply(503, f.read())
                return
            except FileNotFoundError:
                pass
        if path.startswith("/status/"):
            self.reply(int(path.split("/")[2]), b"status body\n")
        elif path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/ok")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path.startswith("/body/"):
            self.reply(200, path[6:].encode())
        elif path == "/big":
            self.reply(200, b"x" * (1 << 20) + b"needle")
        elif path == "/host":
            self.reply(200, self.headers.get("Host", "").encode())
        else:
            self.reply(200 if path in ("/ok", "/health") else 404, b"ok\n")

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


SIGNALS = {signal.SIGUSR1, signal.SIGTERM, signal.SIGINT}
if os.environ.get("HTTP_APP_SIGNALS"):
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)  # before any thread exists
host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
server = http.server.ThreadingHTTPServer((host, port), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
if not os.environ.get("HTTP_APP_SIGNALS"):
    server.serve_forever()
else:
    threading.Thread(target=server.serve_forever, daemon=True).start()
    while True:
        info = signal.sigwaitinfo(SIGNALS)
        print(f"SIG {signal.Signals(info.si_signo).name[3:]} {time.monotonic():.6f}", flush=True)
        if info.si_signo != signal.SIGUSR1:
            time.sleep(float(os.environ.get("HTTP_APP_TERM_DELAY", "0")))
            os._exit(0)
