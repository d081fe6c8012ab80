#!/usr/bin/env python3
"""Work lost when a sweep is killed at a random moment (issue 16's figure).

Runs `bench` on a sweep with `--log-steps`; once the run has saved its first
step (its models built and warmed up), waits a random time of up to --window
seconds and kills it with SIGKILL; runs it again, and so on for --kills kills;
then lets it finish. Per kill it reports the measuring lost (seconds since the
run's last saved step) and, per run, the restart cost (from its start to its
first saved step: every unfinished model rebuilt and warmed up again).

    scripts/kill-figure.py target/release/bench /tmp/kills --kills 10 --seed 1

Prints one line per kill and a summary; touches nothing outside OUT_DIR.
"""

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time


def start(bench, sweep, out):
    cmd = [bench, "--sweep", sweep, "--out", out, "--backend", "flex", "--mode", "prefill",
           "--no-progress", "--log-steps"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    saved = []  # epoch seconds of every saved step, as the run reported them
    log = []

    def read():
        for line in proc.stderr:
            log.append(line.rstrip())
            if line.startswith("saved t="):
                saved.append(float(line.split()[1][2:]))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return proc, saved, log, reader


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bench")
    ap.add_argument("out_dir")
    ap.add_argument("--sweep", default="data/sweeps/default.toml")
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--window", type=float, default=60.0)
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    out = os.path.join(args.out_dir, "killed.jsonl")
    rng = random.Random(args.seed)
    lost, restart = [], []
    began = time.time()
    for k in range(args.kills):
        t0 = time.time()
        proc, saved, log, reader = start(args.bench, args.sweep, out)
        after = rng.uniform(0.0, args.window)
        while not saved and proc.poll() is None:
            time.sleep(0.05)
        if proc.poll() is not None:
            print(f"kill {k + 1}: the sweep finished first; stopping", file=sys.stderr)
            break
        first = saved[0]
        try:
            proc.wait(timeout=max(0.0, first + after - time.time()))
            print(f"kill {k + 1}: the sweep finished first; stopping", file=sys.stderr)
            break
        except subprocess.TimeoutExpired:
            pass
        killed_at = time.time()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        reader.join(timeout=5)
        last = max([t for t in saved if t <= killed_at], default=t0)
        lost.append(killed_at - last)
        restart.append(first - t0)
        print(f"kill {k + 1}: at {killed_at - t0:.1f} s, {len(saved)} steps saved, "
              f"lost {killed_at - last:.2f} s since the last saved step")
    proc, saved, log, reader = start(args.bench, args.sweep, out)
    t0 = time.time()
    proc.wait()
    reader.join(timeout=5)
    if saved:
        restart.append(saved[0] - t0)
    summary = [l for l in log if "measured" in l and "journal" in l]
    print("\n".join(summary))
    with open(out) as f:
        lines = [json.loads(l) for l in f if l.strip()]
    print(f"{len(lines)} measurements written; whole thing {time.time() - began:.0f} s")
    if lost:
        print(f"lost per kill: median {statistics.median(lost):.2f} s, max {max(lost):.2f} s ({len(lost)} kills)")
    if restart:
        print(f"restart to first saved step: median {statistics.median(restart):.2f} s, max {max(restart):.2f} s")


if __name__ == "__main__":
    main()
