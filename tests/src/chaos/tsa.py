"""The chaos suite's RFC 3161 time-stamping authority: `openssl ts -reply`
behind a loopback HTTP server (as batcher/tests/tsa.rs runs it), as its own
process so the suite can take it down and up.

usage: tsa.py PORT DIR   (DIR holds tsa.cnf, made by the suite)
"""
import os
import subprocess
import sys
import tempfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, d = int(sys.argv[1]), sys.argv[2]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        if n <= 0 or n > 65536:
            self.send_error(400)
            return
        body = self.rfile.read(n)
        with tempfile.TemporaryDirectory(dir=d) as t:
            q, r = os.path.join(t, "q.tsq"), os.path.join(t, "r.tsr")
            with open(q, "wb") as f:
                f.write(body)
            p = subprocess.run(["openssl", "ts", "-reply", "-config", os.path.join(d, "tsa.cnf"),
                                "-queryfile", q, "-out", r], capture_output=True)
            if p.returncode != 0:
                self.send_error(500, p.stderr.decode(errors="replace")[:200])
                return
            with open(r, "rb") as f:
                out = f.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


ThreadingHTTPServer.allow_reuse_address = True
ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
