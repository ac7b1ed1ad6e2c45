"""A tiny app for readiness tests: GET /ready answers 200 while FLAG_FILE exists, else 503.

Usage: ready_server.py PORT FLAG_FILE
"""
import http.server
import os
import sys


def main():
    port, flag = int(sys.argv[1]), sys.argv[2]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/ready":
                code = 404
            elif os.path.exists(flag):
                code = 200
            else:
                code = 503
            body = b"ok\n" if code == 200 else b"not ready\n"
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
