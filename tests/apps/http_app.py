"""A tiny HTTP app for probe tests: prints its port, then serves
/ok 200 "ok", /status/N status N, /redirect 302, /body/TEXT 200 TEXT,
/big 200 with 1 MiB, /hang (reads the request, never answers)."""
import http.server
import sys
import time


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.path
        if path == "/hang":
            time.sleep(3600)
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
            self.reply(200 if path == "/ok" else 404, b"ok\n")

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = http.server.ThreadingHTTPServer((sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
