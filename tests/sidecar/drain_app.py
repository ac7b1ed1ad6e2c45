"""A tiny app for the sidecar's drain tests.

GET /slow touches STARTED_FILE, then answers 200 "slow done" after SECONDS; any other
GET answers 200 "ok" at once. SIGTERM is ignored, as an app that keeps serving while its
pod drains: the test stops it with SIGKILL.

Usage: drain_app.py PORT STARTED_FILE SECONDS
"""
import http.server
import signal
import sys
import time


def main():
    port, started, seconds = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            if self.path.startswith("/slow"):
                open(started, "w").close()
                time.sleep(seconds)
                body = b"slow done\n"
            else:
                body = b"ok\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
