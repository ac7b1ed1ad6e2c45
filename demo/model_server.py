#!/usr/bin/env python3
"""A stand-in ML model server for the demo and end-to-end tests.

It behaves like a real inference server where it matters to an autoscaler: it takes a
few seconds to "load the model" before its readiness endpoint passes, each prediction
takes a while, and like vLLM it runs at most --max-running requests at once (its batch)
while the others wait in its queue, which it publishes as vLLM does.

  GET  /ready     503 while loading, 200 after
  POST /predict   {"input": ...} -> {"output": ..., "replica": port, "ms": latency}
  GET  /predict   the same, for curl
  GET  /metrics   Prometheus text with vLLM's series: vllm:num_requests_waiting,
                  vllm:num_requests_running, vllm:gpu_cache_usage_perc (running / max)
  GET  /          a one-line description
"""
import argparse
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--load-seconds", type=float, default=3.0,
                   help="how long 'loading the model' takes before /ready passes")
    p.add_argument("--predict-ms", type=float, default=200.0,
                   help="how long one prediction takes")
    p.add_argument("--max-running", type=int, default=4,
                   help="predictions run at once; more wait in the queue")
    p.add_argument("--model-name", default="demo/llama-tiny",
                   help="the model_name label of the /metrics series")
    p.add_argument("--tag", default="", help="ignored: lets a test or a demo find its replicas")
    args = p.parse_args()
    started = time.monotonic()
    loaded = threading.Event()
    slots = threading.Semaphore(args.max_running)
    lock = threading.Lock()
    counts = {"waiting": 0, "running": 0, "done": 0}

    def metrics_text():
        with lock:
            waiting, running, done = counts["waiting"], counts["running"], counts["done"]
        name = args.model_name.replace("\\", "\\\\").replace('"', '\\"')
        label = '{model_name="%s"}' % name
        return "".join([
            "# HELP vllm:num_requests_running Number of requests currently running on GPU.\n",
            "# TYPE vllm:num_requests_running gauge\n",
            f"vllm:num_requests_running{label} {float(running)}\n",
            "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n",
            "# TYPE vllm:num_requests_waiting gauge\n",
            f"vllm:num_requests_waiting{label} {float(waiting)}\n",
            "# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent usage.\n",
            "# TYPE vllm:gpu_cache_usage_perc gauge\n",
            f"vllm:gpu_cache_usage_perc{label} {running / args.max_running}\n",
            "# HELP vllm:request_success_total Count of successfully processed requests.\n",
            "# TYPE vllm:request_success_total counter\n",
            f'vllm:request_success_total{{finished_reason="stop",model_name="{name}"}}'
            f" {float(done)}\n",
        ])

    def load():
        time.sleep(args.load_seconds)
        loaded.set()

    threading.Thread(target=load, daemon=True).start()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):  # quiet: the sidecar measures requests
            pass

        def reply(self, status, body, ctype="application/json"):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def predict(self, payload):
            if not loaded.is_set():
                return self.reply(503, json.dumps({"error": "model is loading"}))
            t0 = time.monotonic()
            with lock:
                counts["waiting"] += 1
            with slots:
                with lock:
                    counts["waiting"] -= 1
                    counts["running"] += 1
                time.sleep(args.predict_ms / 1000.0)
                with lock:
                    counts["running"] -= 1
                    counts["done"] += 1
            out = {"output": f"prediction for {payload!r}", "replica": args.port,
                   "pid": os.getpid(), "ms": round((time.monotonic() - t0) * 1000, 1)}
            self.reply(200, json.dumps(out))

        def do_GET(self):
            if self.path.startswith("/ready"):
                if loaded.is_set():
                    return self.reply(200, '{"ready":true}')
                return self.reply(503, '{"ready":false,"loading_for_s":%.1f}'
                                  % (time.monotonic() - started))
            if self.path.split("?")[0].endswith("/predict"):
                return self.predict(self.path)
            if self.path == "/metrics":
                return self.reply(200, metrics_text(), "text/plain; version=0.0.4")
            self.reply(200, "zeroscale demo model server\n", "text/plain")

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n).decode(errors="replace")
            if self.path.split("?")[0].endswith("/predict"):
                return self.predict(body)
            self.reply(404, '{"error":"no such path"}')

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
