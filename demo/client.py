#!/usr/bin/env python3
"""The demo's client: sends requests through the balancer and prints a readable
timeline of what zeroscale does — the cold start from zero, scale-up under load,
scale-down when quiet, and scale to zero when idle.

Usage: client.py --balancer 127.0.0.1:8000 --scaler-http 127.0.0.1:8080
"""
import argparse
import json
import threading
import time
import urllib.request

T0 = time.monotonic()
PRINT = threading.Lock()


def say(msg):
    with PRINT:
        print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


class Recorder(threading.Thread):
    """Writes the demo's timeline as CSV for scripts/demo-plot.sh: every 0.25 s a sample
    (t, the workload's replicas and state from the scaler, requests the balancer holds
    right now from its /metrics, requests the client is waiting on), and an event row
    for each answer to a request sent at zero replicas (wait: the cold start the user saw).
    """

    def __init__(self, path, watcher, balancer_admin, workload):
        super().__init__(daemon=True)
        self.out = open(path, "w", buffering=1)
        self.out.write("t,replicas,state,held,in_flight,event,wait\n")
        self.watcher, self.admin, self.workload = watcher, balancer_admin, workload
        self.in_flight = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def held(self):
        if not self.admin:
            return ""
        with urllib.request.urlopen(f"http://{self.admin}/metrics", timeout=2) as r:
            prefix = f'zeroscale_balancer_held_requests{{workload="{self.workload}"}} '
            for line in r.read().decode().splitlines():
                if line.startswith(prefix):
                    return str(int(float(line[len(prefix):])))
        return "0"

    def request_started(self):
        with self.lock:
            self.in_flight += 1

    def request_ended(self):
        with self.lock:
            self.in_flight -= 1

    def event(self, name, wait):
        with self.lock:
            self.out.write(f"{time.monotonic() - T0:.2f},,,,,{name},{wait:.2f}\n")

    def run(self):
        while not self.stop.is_set():
            try:
                st = self.watcher.status()
                held = self.held()
                with self.lock:
                    self.out.write(f"{time.monotonic() - T0:.2f},{st['replicas']},{st['state']},"
                                   f"{held},{self.in_flight},,\n")
            except Exception:  # a component may be starting
                pass
            time.sleep(0.25)


class NoRecorder:
    def request_started(self): pass
    def request_ended(self): pass
    def event(self, name, wait): pass


RECORDER = NoRecorder()
TOKEN = ""  # the scaler's /workloads and /decisions need a bearer token (--token-file)


def get_json(url):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"} if TOKEN else {})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.load(r)


def request(balancer, host, timeout=300):
    req = urllib.request.Request(f"http://{balancer}/demo-model/predict",
                                 data=b'{"input": "hello"}', method="POST",
                                 headers={"Host": host, "Content-Type": "application/json"})
    t = time.monotonic()
    RECORDER.request_started()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = json.load(r)
            return r.status, body, time.monotonic() - t
    finally:
        RECORDER.request_ended()


class Watcher(threading.Thread):
    """Prints every change of the workload's state and every new decision."""

    def __init__(self, scaler, workload):
        super().__init__(daemon=True)
        self.scaler, self.workload = scaler, workload
        self.seen = set()
        self.state = None
        self.stop = threading.Event()

    def status(self):
        for w in get_json(f"http://{self.scaler}/workloads"):
            if w["workload"] == self.workload:
                return w
        return None

    def run(self):
        while not self.stop.is_set():
            try:
                decisions = get_json(f"http://{self.scaler}/decisions?workload={self.workload}&limit=10")
                for d in reversed(decisions):
                    key = (d["time"], d["reason"])
                    if key in self.seen:
                        continue
                    self.seen.add(key)
                    if d["trigger"] == "registered" and d["replicasBefore"] == d["replicasAfter"]:
                        continue
                    say(f"  scaler: {d['from']} -> {d['to']}, replicas "
                        f"{d['replicasBefore']} -> {d['replicasAfter']}: {d['reason']}")
            except Exception as e:  # the scaler may be starting
                pass
            time.sleep(0.3)


def wait_for(cond, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.3)
    return False


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--balancer", default="127.0.0.1:8000")
    p.add_argument("--scaler-http", default="127.0.0.1:8080")
    p.add_argument("--token-file", default="", help="bearer token for the scaler's HTTP API")
    p.add_argument("--host", default="demo-model.local")
    p.add_argument("--workload", default="local/Deployment/demo-model")
    p.add_argument("--load-seconds", type=float, default=20)
    p.add_argument("--concurrency", type=int, default=12)
    p.add_argument("--csv", default="", help="write the timeline as CSV here (scripts/demo-plot.sh)")
    p.add_argument("--balancer-admin", default="", help="the balancer's admin address, for held requests")
    args = p.parse_args()
    global TOKEN, RECORDER
    if args.token_file:
        with open(args.token_file) as f:
            TOKEN = f.read().strip()

    w = Watcher(args.scaler_http, args.workload)
    say("waiting for the scaler to report the workload")
    wait_for(lambda: w.status() is not None, 30)
    st = w.status()
    say(f"workload {args.workload}: state {st['state']}, {st['replicas']} replicas")
    w.seen.update((d["time"], d["reason"]) for d in
                  get_json(f"http://{args.scaler_http}/decisions?workload={args.workload}&limit=50"))
    w.start()
    if args.csv:
        RECORDER = Recorder(args.csv, w, args.balancer_admin, args.workload)
        RECORDER.start()

    say("1) one request while the model is at zero replicas: the balancer holds it,")
    say("   the scaler starts a replica, the model loads, then the request is answered")
    status, body, secs = request(args.balancer, args.host)
    RECORDER.event("cold_start", secs)
    say(f"   -> HTTP {status} from replica :{body['replica']} after {secs:.2f}s "
        f"(cold start: the time the user waited)")

    say(f"2) load: {args.concurrency} clients for {args.load_seconds:.0f}s "
        f"(rule 'queue': CUSTOM vllm:num_requests_waiting SUM > 2, read from the model "
        f"server's /metrics)")
    stop = time.monotonic() + args.load_seconds
    counts = {"ok": 0, "failed": 0}
    replicas = set()
    lock = threading.Lock()

    def client():
        while time.monotonic() < stop:
            try:
                s, b, _ = request(args.balancer, args.host)
                with lock:
                    counts["ok" if s == 200 else "failed"] += 1
                    replicas.add(b.get("replica"))
            except Exception:
                with lock:
                    counts["failed"] += 1

    threads = [threading.Thread(target=client) for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    say(f"   -> {counts['ok']} answered, {counts['failed']} failed, "
        f"served by {len(replicas)} replicas")

    say("3) quiet: rule 'quiet' scales down, then idleTimeoutSeconds (15s) takes it to zero")
    wait_for(lambda: w.status()["replicas"] == 0, 90)
    st = w.status()
    say(f"   -> state {st['state']}, {st['replicas']} replicas")

    say("4) a request at zero again: held, woken, answered")
    status, body, secs = request(args.balancer, args.host)
    RECORDER.event("cold_start", secs)
    say(f"   -> HTTP {status} after {secs:.2f}s")
    time.sleep(1)
    w.stop.set()
    say(f"done: {counts['failed']} requests failed in the whole demo")
    return 0 if counts["failed"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
