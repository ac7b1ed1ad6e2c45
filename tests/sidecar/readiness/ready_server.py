"""A tiny app for the sidecar's tests.

GET /ready answers 200 while FLAG_FILE exists, else 503 (readiness tests). GET /ok answers
200 at once. GET /slow touches FLAG_FILE.slow-started, then answers 200 "slow done" after
SLOW_SECONDS (a request in flight while the sidecar drains). Anything else: 404.

Usage: ready_server.py PORT FLAG_FILE [SLOW_SECONDS]
"""
import http.server
import os
import sys
import time


def main():
    port, flag = int(sys.argv[1]), sys.argv[2]
    slow_seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            if self.path == "/ready":
                code = 200 if os.path.exists(flag) else 503
                body = b"ok\n" if code == 200 else b"not ready\n"
            elif self.path == "/ok":
                code, body = 200, b"ok\n"
            elif self.path == "/slow":
                open(flag + ".slow-started", "w").close()
                time.sleep(slow_seconds)
                code, body = 200, b"slow done\n"
            else:
                code, body = 404, b"not found\n"
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
