#!/usr/bin/env python3
"""Turns the JSON lines of benches/run.sh into benches/RESULTS.md and the PNG plot.

Standard library only; the plot is drawn by gnuplot (pngcairo).
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import tempfile

# Every server measured, in table order; the floor (benches/floor) is the reference writer.
# framecast-mjpeg is framecast with its subscribers on `GET /mjpeg` (loadgen `--output mjpeg`).
SERVERS = ("framecast", "framecast-mjpeg", "floor", "nchan")
# The two servers the headline compares column by column.
COMPARED = ("framecast", "nchan")
NAMES = {
    "framecast": "framecast",
    "framecast-mjpeg": "framecast over MJPEG",
    "floor": "floor",
    "nchan": "nginx + Nchan",
}
LABELS = ("480p", "720p")
TARGETS = {"480p": 1.5, "720p": 1.4}
IDLE_TARGET_KIB = 8.0
P50_TARGET_MS = 1.0


def command(*args):
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine(framecast, with_nginx):
    model = "?"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = "?"
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    rev = command("git", "rev-parse", "--short", "HEAD")
    if not rev or " " in rev:
        rev = "(no commit yet)"
    if framecast:
        which = f"framecast {framecast}; floor and loadgen at commit {rev}"
    else:
        which = f"framecast, floor and loadgen at commit {rev}"
    text = f"{model}, {os.cpu_count()} CPUs, {memory}, Linux {platform.release()}; "
    if with_nginx:
        nginx = command("nginx", "-v").replace("nginx version: ", "")
        nchan = command("dpkg-query", "-W", "-f=${Version}", "libnginx-mod-nchan")
        text += f"{nginx} with libnginx-mod-nchan {nchan}; "
    return text + f"{which} (plus uncommitted work, if any)"


def per_core(r):
    """Event data delivered per second per core of server CPU time, in bytes (None if idle)."""
    share = r["server_cpu_share"]
    return r["payload_bytes_per_s"] / share if share > 0 else None


def pct(x, digits=1):
    return f"{x * 100:.{digits}f} %"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("results")
    parser.add_argument("--out", required=True)
    parser.add_argument("--plot", required=True)
    parser.add_argument("--load-before", default="?")
    parser.add_argument("--others", default="")
    parser.add_argument("--invocation", default="bash benches/run.sh")
    parser.add_argument("--date", default="", help="when the run started, UTC")
    parser.add_argument("--framecast", default="", help="the framecast measured, if not built here")
    parser.add_argument("--settings", default="")
    args = parser.parse_args()

    rows = [json.loads(line) for line in open(args.results) if line.strip()]
    # A step whose subscribers read MJPEG is its own row, as run.sh names it in "best" lines.
    for r in rows:
        if r["mode"] == "run" and r.get("output") == "mjpeg":
            r["server"] += "-mjpeg"
    # The main comparison's steps; the extra cases (variants, multiplex) are tagged with "case".
    runs = [r for r in rows if r["mode"] == "run" and not r.get("case")]
    cased = [r for r in rows if r["mode"] == "run" and r.get("case")]
    best = {(r["server"], r["label"]): r["subscribers"] for r in rows if r["mode"] == "best"}
    idle = {r["server"]: r for r in rows if r["mode"] == "idle"}
    iperfs = [r for r in rows if r["mode"] == "iperf3"]
    steps = [r for r in runs if r["stalled"] == 0 and r["subscribers"] > 10]
    fps = runs[0]["fps"] if runs else 30

    def step(server, label, n):
        hits = [r for r in steps if (r["server"], r["label"], r["subscribers"]) == (server, label, n)]
        return hits[-1] if hits else None

    # Bytes one subscriber needs per second, from the wire bytes per event (SSE, and MJPEG).
    per_subscriber = {}
    for label in LABELS:
        for mjpeg in (False, True):
            sizes = [
                r["event_bytes"]
                for r in steps
                if r["label"] == label and r["event_bytes"] > 0
                and (r["server"] == "framecast-mjpeg") == mjpeg
            ]
            if sizes:
                per_subscriber[(label, mjpeg)] = max(sizes) * fps

    # Each server's step at its largest passing count, and its event data per core there.
    at_best = {}
    for (server, label), n in best.items():
        r = step(server, label, n) if n else None
        if r and per_core(r):
            at_best[(server, label)] = r

    out = []
    w = out.append
    w("# framecast fan-out benchmark\n")
    date = args.date or f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M}"
    w(
        f"Made by `{args.invocation}` (run started {date} UTC). Do not edit by hand: "
        "rerun the script.\n"
    )
    measured = {r["server"] for r in rows if "server" in r}
    w(f"- Machine: {machine(args.framecast, 'nchan' in measured)}.")
    w(
        f"- Load average just before the run: {args.load_before}; processes then using > 5 % CPU: "
        f"{args.others.strip() or 'none'}. Other work on the box during the run adds noise to "
        "every figure (all servers alike)."
    )
    w(f"- Settings: {args.settings}.")
    main_run = bool(runs or best or idle or iperfs)
    if main_run:
        w(
            "- Each server is pinned to CPU 0 (`taskset -c 0`), the load generator to CPU 1; "
            "each step starts the server afresh. A step **passes** when the server accepted ≥ 99 % "
            "of offered frames, the mean per-subscriber drop ratio is < 1 % and p99 "
            "publish→receive latency is < 100 ms (and every subscriber connected, and no "
            "sampled payload differed).\n"
        )

        w("## Headline\n")
        w(
            "The floor (`benches/floor`) is the reference for throughput: one thread on raw epoll that "
            "builds each frame's event once (the same bytes framecast sends) and writes it to every "
            "subscriber with non-blocking writes, latest-frame-wins, no HTTP framework. "
            "\"Per core\" is event data delivered per second divided by the server's CPU time per "
            "second, at that server's largest passing count.\n"
        )
        w("| figure | framecast | Nchan | framecast ÷ Nchan | target | met |")
        w("|---|---|---|---|---|---|")
        for label in LABELS:
            f, n = best.get(("framecast", label)), best.get(("nchan", label))
            if f is None or n is None:
                continue
            ratio = f / n if n else float("inf")
            w(
                f"| largest passing subscriber count, {label} at {fps:g} fps | {f} | {n} | "
                f"{ratio:.2f} × | ≥ {TARGETS[label]} × | {'yes' if ratio >= TARGETS[label] else 'no'} |"
            )
        for label in LABELS:
            m, f, n = (best.get((s, label)) for s in ("framecast-mjpeg", "framecast", "nchan"))
            if m is None:
                continue
            over_sse = f" ({m / f:.0%} of framecast's over SSE)" if f else ""
            nchan = f"{n} (SSE)" if n is not None else "–"
            ratio = f"{m / n:.2f} ×" if n else ""
            w(
                f"| largest passing subscriber count over MJPEG (`/mjpeg`), {label} at {fps:g} fps | "
                f"{m}{over_sse} | {nchan} | {ratio} | (none) | |"
            )
        for label in LABELS:
            floor = at_best.get(("floor", label))
            if not floor:
                continue
            cells = []
            for server in COMPARED:
                r = at_best.get((server, label))
                cells.append(
                    f"{per_core(r) / per_core(floor):.0%} ({per_core(r) / 1e9:.2f} of "
                    f"{per_core(floor) / 1e9:.2f} GB/s)"
                    if r
                    else "–"
                )
            w(
                f"| {label} event data per server core, as a share of the floor's | {cells[0]} | "
                f"{cells[1]} | | (none) | |"
            )
        if idle:
            cells = []
            for server in COMPARED:
                r = idle.get(server)
                cells.append(f"{r['server_kib_per_subscriber']:.2f} KiB" if r else "–")
            n_idle = next(iter(idle.values()))["subscribers"]
            f_idle = idle.get("framecast", {}).get("server_kib_per_subscriber")
            met = "yes" if f_idle is not None and f_idle <= IDLE_TARGET_KIB else "no"
            w(
                f"| server RSS per idle subscriber, at {n_idle} | {cells[0]} | {cells[1]} | | "
                f"≤ {IDLE_TARGET_KIB:g} KiB | {met} |"
            )
        small = {r["server"]: r for r in runs if r["subscribers"] == 10 and r["stalled"] == 0}
        if any(s in small for s in COMPARED):
            cells = [f"{small[s]['latency_ms']['p50']:.2f} ms" if s in small else "–" for s in COMPARED]
            f50 = small.get("framecast", {}).get("latency_ms", {}).get("p50")
            met = "yes" if f50 is not None and f50 <= P50_TARGET_MS else "no"
            w(
                f"| publish→receive p50, 10 subscribers, 480p | {cells[0]} | {cells[1]} | | "
                f"≤ {P50_TARGET_MS:g} ms | {met} |"
            )
        m50 = small.get("framecast-mjpeg", {}).get("latency_ms", {}).get("p50")
        if m50 is not None:
            w(
                f"| publish→receive p50, 10 subscribers, 480p, over MJPEG | {m50:.2f} ms | – | | "
                "(none) | |"
            )
        stalled = {r["server"]: r for r in runs if r["stalled"] > 0}
        if stalled:
            cells = []
            for server in COMPARED:
                r = stalled.get(server)
                tcp = ""
                if r and r.get("tcp_mem_peak_pages"):
                    tcp = (
                        f", kernel TCP memory peak {r['tcp_mem_peak_pages'] * 4 / 1024 / 1024:.2f} GiB "
                        f"(pressure at {r['tcp_mem_pressure_pages'] * 4 / 1024 / 1024:.2f} GiB)"
                    )
                cells.append(
                    f"{pct(r['accept_ratio'])} accepted, healthy drops "
                    f"{pct(r['drop_ratio']['mean'], 1)}, p99 {r['latency_ms']['p99']:.1f} ms{tcp}"
                    if r
                    else "–"
                )
            k = next(iter(stalled.values()))
            f_acc = stalled.get("framecast", {}).get("accept_ratio", 0)
            w(
                f"| ingest with {k['stalled']} stalled + {k['subscribers']} healthy subscribers "
                f"(480p) | {cells[0]} | {cells[1]} | | = offered rate | {'yes' if f_acc >= 0.99 else 'no'} |"
            )
        if at_best:
            top = max(at_best.values(), key=lambda r: r["loadgen_cpu_share"])
            w(
                f"| load generator's own CPU at the largest passing counts (highest) | "
                f"{pct(top['loadgen_cpu_share'], 0)} of CPU 1 ({top['server']} {top['label']}, "
                f"{top['subscribers']} subscribers) | | | < 90 % (not the bottleneck) | "
                f"{'yes' if top['loadgen_cpu_share'] < 0.9 else 'no'} |"
            )
        if runs:
            busiest = max(runs, key=lambda r: r["loadgen_cpu_share"])
            w(
                f"| load generator's own CPU, busiest step of all | "
                f"{pct(busiest['loadgen_cpu_share'], 0)} ({busiest['server']} {busiest['label']}, "
                f"{busiest['subscribers']} subscribers, {'passed' if busiest['pass'] else 'failed'}) "
                "| | | | |"
            )
        w("")
        for label in LABELS:
            for mjpeg, how, unit in ((False, "", "event"), (True, " MJPEG", "part")):
                need = per_subscriber.get((label, mjpeg))
                if need:
                    w(
                        f"A {label}{how} subscriber at {fps:g} fps needs {need / 1e6:.2f} MB/s "
                        f"(≈ {need / fps / 1e3:.0f} KB per {unit} on the wire)."
                    )
        for r in iperfs:
            w(
                f"For context only (not a bound: bulk streams through a few deep socket buffers are "
                f"not the work fan-out does): loopback TCP with iperf3, {r.get('streams', 1)} "
                f"stream(s), moved {r['bytes_per_s'] / 1e9:.2f} GB/s (sender "
                f"{pct(r['sender_cpu_share'], 0)} of CPU 0, receiver {pct(r['receiver_cpu_share'], 0)} "
                "of CPU 1)."
            )
        w("")

        if any(server == "floor" for server, _ in at_best):
            w("## Against the floor\n")
            w(
                "| server | frames | largest passing count | event data GB/s | server CPU (of one core) "
                "| GB/s per server core | share of the floor's per core | frames delivered/s per "
                "server core |"
            )
            w("|---|---|---|---|---|---|---|---|")
            for label in LABELS:
                floor = at_best.get(("floor", label))
                for server in SERVERS:
                    r = at_best.get((server, label))
                    if not r:
                        continue
                    share = f"{per_core(r) / per_core(floor):.0%}" if floor else "–"
                    w(
                        f"| {NAMES[server]} | {label} | {r['subscribers']} | "
                        f"{r['payload_bytes_per_s'] / 1e9:.2f} | {pct(r['server_cpu_share'], 0)} | "
                        f"{per_core(r) / 1e9:.2f} | {share} | "
                        f"{r['events_per_s'] / r['server_cpu_share']:.0f} |"
                    )
            w("")
            if any(server == "framecast-mjpeg" for server, _ in at_best):
                w(
                    "Over MJPEG the event data is the JPEG itself, about three quarters of the bytes "
                    "of an SSE event (the same JPEG in base64, inside JSON), so its bytes per core "
                    "are not the floor's kind: compare frames delivered per server core.\n"
                )

        w("## At the largest passing count\n")
        w(
            "| server | frames | subscribers | accepted | events/s | event data MB/s | drops mean / worst "
            "| latency p50 / p99 / max (ms) | server CPU (of one core) | server peak RSS | loadgen CPU |"
        )
        w("|---|---|---|---|---|---|---|---|---|---|---|")
        for label in LABELS:
            for server in SERVERS:
                n = best.get((server, label))
                r = step(server, label, n) if n else None
                if not r:
                    continue
                lat = r["latency_ms"]
                w(
                    f"| {server} | {label} | {n} | {pct(r['accept_ratio'])} | {r['events_per_s']:.0f} | "
                    f"{r['payload_bytes_per_s'] / 1e6:.0f} | {pct(r['drop_ratio']['mean'], 2)} / "
                    f"{pct(r['drop_ratio']['max'], 2)} | {lat['p50']:.1f} / {lat['p99']:.1f} / "
                    f"{lat['max']:.1f} | {pct(r['server_cpu_share'], 0)} | "
                    f"{r['server_rss_peak_kib'] / 1024:.1f} MiB | {pct(r['loadgen_cpu_share'], 0)} |"
                )
        w("")

        w("## Reading the numbers\n")
        for label in LABELS:
            for server in SERVERS:
                n = best.get((server, label))
                above = [r for r in steps if (r["server"], r["label"]) == (server, label)
                         and n and r["subscribers"] > n]
                first_fail = min(above, key=lambda r: r["subscribers"]) if above else None
                if first_fail and first_fail["loadgen_cpu_share"] > 0.9:
                    w(
                        f"- {server} {label}: at the first failing step ({first_fail['subscribers']} "
                        f"subscribers) the load generator used {pct(first_fail['loadgen_cpu_share'], 0)} "
                        f"of its core (server {pct(first_fail['server_cpu_share'], 0)}). Receiving costs "
                        "the client about as much kernel work per byte as sending costs the server, so "
                        "on two cores the generator reaches its own limit near here; the failure (seq "
                        "gaps: framecast skips frames for a reader that falls behind) may be partly the "
                        f"reader's, and {n} is a lower bound for {server}."
                    )
        for label in LABELS:
            # The same load for both: the largest count framecast and the floor each passed.
            common = [
                (f, o)
                for f in steps
                for o in steps
                if (f["server"], o["server"], f["label"], o["label"]) == ("framecast", "floor", label, label)
                and f["subscribers"] == o["subscribers"] and f["pass"] and o["pass"]
                and per_core(f) and per_core(o)
            ]
            if common:
                f, o = max(common, key=lambda pair: pair[0]["subscribers"])
                w(
                    f"- {label} at the same load, {f['subscribers']} subscribers (the largest count "
                    f"both passed): framecast {per_core(f) / 1e9:.2f} GB/s per core, the floor "
                    f"{per_core(o) / 1e9:.2f} ({per_core(f) / per_core(o):.0%})."
                )
        over = [
            label
            for label in LABELS
            if ("framecast", label) in at_best and ("floor", label) in at_best
            and per_core(at_best[("framecast", label)]) > per_core(at_best[("floor", label)])
        ]
        if over:
            w(
                f"- framecast above the floor ({', '.join(over)}): the floor does strictly less work "
                "per event, so this is noise (other work on the machine, or CPU time the kernel did "
                "not charge to either process); rerun on a quieter machine before reading into it."
            )
        pressed = [server for server, r in stalled.items()
                   if r.get("tcp_mem_peak_pages", 0) >= r.get("tcp_mem_pressure_pages", 1) > 1]
        if pressed:
            w(
                f"- Stalled subscribers ({' and '.join(pressed)}): the machine's TCP memory reached "
                "the kernel's pressure threshold (`/proc/net/sockstat` against `net.ipv4.tcp_mem`). "
                "Each never-reading subscriber's server-side socket may queue up to `tcp_wmem` max "
                "(4 MiB by default), so a thousand of them exhaust TCP memory and the kernel then "
                "throttles every socket, the publisher's and the healthy subscribers' included."
            )
        f_idle = idle.get("framecast")
        if f_idle and f_idle["server_rss_after_close_kib"] > f_idle["server_rss_before_kib"] * 2:
            w(
                f"- framecast idle: after all {f_idle['subscribers']} subscribers closed, RSS stayed at "
                f"{f_idle['server_rss_after_close_kib'] / 1024:.0f} MiB (from "
                f"{f_idle['server_rss_before_kib'] / 1024:.0f} MiB before). That is glibc malloc "
                "keeping freed memory for reuse, not a leak: it hands back only the top of a heap, "
                "`malloc_trim(0)` (through gdb) returns the rest, and a second round of subscribers "
                "reuses it rather than growing."
            )
        w("")

        w("## Plot\n")
        w("![subscribers vs server CPU and vs p99 latency](results.png)\n")
        draw(steps, args.plot)

        w("## Every step\n")
        w(
            "| server | frames | subscribers | stalled | accepted | drops mean | p50 ms | p99 ms "
            "| publish RTT p99 ms | server CPU | loadgen CPU | checked | pass |"
        )
        w("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in runs:
            w(
                f"| {r['server']} | {r['label']} | {r['subscribers']} | {r['stalled']} | "
                f"{pct(r['accept_ratio'])} | {pct(r['drop_ratio']['mean'], 2)} | "
                f"{r['latency_ms']['p50']:.2f} | {r['latency_ms']['p99']:.1f} | "
                f"{r['publish_rtt_ms']['p99']:.1f} | {pct(r['server_cpu_share'], 0)} | "
                f"{pct(r['loadgen_cpu_share'], 0)} | {r['checked']} | {'yes' if r['pass'] else 'no'} |"
            )
        w("")
        if idle:
            w("## Idle subscribers\n")
            w("| server | connected | RSS before | RSS held | RSS after closing | per subscriber |")
            w("|---|---|---|---|---|---|")
            for server in SERVERS:
                r = idle.get(server)
                if r:
                    w(
                        f"| {server} | {r['connected']}/{r['subscribers']} | "
                        f"{r['server_rss_before_kib'] / 1024:.1f} MiB | "
                        f"{r['server_rss_held_kib'] / 1024:.1f} MiB | "
                        f"{r['server_rss_after_close_kib'] / 1024:.1f} MiB | "
                        f"{r['server_kib_per_subscriber']:.2f} KiB |"
                    )
            w("")
            scraped = [r for r in idle.values() if r.get("scrape_held")]
            if scraped:
                w("### What a scrape costs\n")
                w(
                    "Sequential GETs, each on a new connection, before the idle subscribers "
                    "connect and while all of them are held.\n"
                )
                w("| server | path | subscribers | requests | p50 | p99 | server CPU per request | body |")
                w("|---|---|---|---|---|---|---|---|")
                for r in scraped:
                    for n, key in ((0, "scrape_empty"), (r["connected"], "scrape_held")):
                        x = r[key]
                        w(
                            f"| {r['server']} | `{r['scrape_path']}` | {n} | {x['requests']} | "
                            f"{x['p50_ms']:.2f} ms | {x['p99_ms']:.2f} ms | "
                            f"{x['server_cpu_ms']:.3f} ms | {x['bytes']} B |"
                        )
                w("")

    elif any(r["case"] != "cluster" for r in cased):
        w(
            "- framecast is pinned to CPU 0 (`taskset -c 0`), the load generator to CPU 1; "
            "each step starts the server afresh.\n"
        )
    else:
        w("")
    write_cases(w, cased)

    w("## How it was measured\n")
    w(
        "- `loadgen` (benches/loadgen) runs on one thread. One keep-alive connection publishes a "
        "frame every 1/fps s (ticks it overruns are skipped, so they count as offered but not "
        "accepted); N subscribers are raw HTTP/1.1 connections whose event streams are parsed "
        "incrementally (chunked decoding, SSE line and field rules). Latency is the time from "
        "just before the publish request is written to the moment the whole event has been "
        "read, both on the generator's monotonic clock. One event in 100 per subscriber is "
        "decoded (JSON, base64) and compared byte for byte with the JPEG that was sent; in the "
        "others only the head is parsed (`seq`, `size`) and the rest of the base64 is counted, "
        "not scanned (the next event must then parse where it should)."
    )
    if main_run:
        w(
            "- framecast gets the JPEG (`POST /frames`); Nchan gets the same event JSON framecast "
            "would send (`POST /pub`, built by the generator) and serves it as an EventSource "
            "(`benches/nchan.conf`: one worker, buffer of one message). Drops are gaps in `seq` "
            "for all servers."
        )
        w(
            "- The floor (`benches/floor`) gets the same requests as framecast and answers them as "
            "framecast does. It is one thread on an edge-triggered epoll set (`mio`): each published "
            "JPEG becomes one buffer, the SSE event framecast would send wrapped as one HTTP chunk, "
            "and every subscriber keeps only a reference to the buffer it is writing and its offset "
            "in it. Caught-up subscribers start a new frame as soon as it is published; one still "
            "writing an older frame finishes it, then jumps to the newest. Sockets get framecast's "
            "settings (`TCP_NODELAY`, 256 KiB `SO_SNDBUF`). It leaves out what the benchmark does not "
            "exercise (status events, keep-alives, other routes, limits), so it shows about the most "
            "a server writing events this way delivers per core on this machine (another technique, "
            "zero-copy sends say, could do better); it is not a server to deploy."
        )
    if any(r["server"] == "framecast-mjpeg" for r in runs):
        w(
            "- framecast over MJPEG (`framecast-mjpeg`, `loadgen run --output mjpeg`): the same "
            "framecast, its subscribers on `GET /mjpeg` (`multipart/x-mixed-replace`, one JPEG per "
            "part with its `Content-Length`). A part carries no `seq`, so the generator numbers "
            "the frames itself and writes the number into each JPEG it publishes, as a "
            "fixed-length comment segment (`FF FE`) right after start-of-image, which framecast "
            "passes on untouched. A subscriber reads each part's headers and its first 64 bytes "
            "(the number), counts the rest by `Content-Length` without scanning it, and counts "
            "the part once the delimiter after it has been read (when a browser would show it). "
            "Latency, drops and the one-in-100 byte-for-byte check are then as for SSE events; "
            "the event data counted is the JPEG as published, its mark included."
        )
    w(
        "- Server CPU is utime + stime from `/proc/PID/stat` over the measured window (nginx: "
        "master + worker); peak RSS is the largest `VmRSS` sampled every 250 ms. Kernel "
        "work done in softirq context on the server's core is not always charged to the server "
        "process, so CPU shares are lower bounds."
    )
    if main_run:
        w(
            "- Idle memory: RSS of the server before any subscriber and after all of them have "
            "connected and sat idle, divided by their number."
        )
        w(
            "- Stalled subscribers (`--stalled`): connections with a 4 KiB receive buffer that "
            "send their request and never read, alongside healthy ones."
        )
    if cased:
        w(
            "- The extra cases (`CASES=variants,multiplex`) run framecast alone. With several "
            "streams the generator publishes to each on its own keep-alive connection, each "
            "stream's ticks offset by an equal share of the period; each subscriber connection "
            "keeps a tally per stream it carries (the event's JSON names its stream; `seq` counts "
            "per stream), and drops are counted per connection and stream. With `?width=` the "
            "sampled events cannot be compared byte for byte (framecast re-encodes the JPEG): "
            "they are checked to decode (zune-jpeg) to the width and height the event announces, "
            "narrower than the frame sent and with its aspect ratio."
        )
    w("")
    w("### Commands\n")
    w("```sh")
    w("bash benches/run.sh      # this whole file, ~20 min; --quick for a coarse pass")
    w("# only the framecast-only cases (scaled variants, 16 streams on one connection), ~3 min:")
    w("CASES=variants,multiplex RESULTS_DIR=/tmp/cases bash benches/run.sh")
    w("# framecast nodes in a cluster over NATS (needs nats-server), ~2 min:")
    w("CASES=cluster STEP_SECONDS=5 RESULTS_DIR=/tmp/cluster bash benches/run.sh")
    w("# another framecast build, results elsewhere (before/after):")
    w("FRAMECAST_BIN=/path/to/framecast RESULTS_DIR=/tmp/before bash benches/run.sh")
    w("bash benches/smoke.sh    # the few-second check the test command runs")
    w("# one step by hand:")
    w("taskset -c 0 target/release/framecast --bind 127.0.0.1:8080 --no-test-pattern &")
    w(
        "taskset -c 1 target/release/loadgen run --server framecast --url http://127.0.0.1:8080 \\\n"
        "    --frames benches/out/frames/480p --fps 30 --subscribers 1000 --duration 8 --warmup 2 \\\n"
        "    --server-pid $!"
    )
    w(
        "taskset -c 1 target/release/loadgen idle --server framecast --url http://127.0.0.1:8080 \\\n"
        "    --subscribers 10000 --server-pid <framecast's pid>"
    )
    w("# the same with every viewer at width 320; or 16 streams, each viewer on one connection:")
    w("#   ... --frames benches/out/frames/720p --subscribers 500 --query width=320")
    w("#   ... --frames benches/out/frames/480p --fps 10 --subscribers 200 --streams 16 --multiplex")
    w("# the same with every subscriber reading MJPEG (GET /mjpeg):")
    w("#   ... --frames benches/out/frames/480p --subscribers 1000 --output mjpeg")
    w("taskset -c 0 target/release/floor --bind 127.0.0.1:8081 &   # then --server floor")
    w(
        "taskset -c 1 iperf3 -s -p 5201 & taskset -c 0 iperf3 -c 127.0.0.1 -p 5201 -t 8 -P 8 -J"
    )
    w("```")
    w("")
    w("Raw JSON lines of this run: `results.jsonl` next to this file.")
    with open(args.out, "w") as f:
        f.write("\n".join(out) + "\n")


def write_cases(w, cased):
    """The tables of the extra cases: scaled variants, multiplexed streams, the cluster."""
    variants = [r for r in cased if r["case"] == "variants"]
    multiplex = [r for r in cased if r["case"] == "multiplex"]
    cluster = [r for r in cased if r["case"] == "cluster"]
    if variants:
        write_variants(w, variants)
    if multiplex:
        write_multiplex(w, multiplex)
    if cluster:
        write_cluster(w, cluster)


def drops(r):
    return f"{pct(r['drop_ratio']['mean'], 2)} / {pct(r['drop_ratio']['max'], 2)}"


def write_variants(w, rows):
    first = rows[0]
    full = next((r for r in rows if not r.get("width")), None)
    w("## Scaled variants (`?width=`)\n")
    w(
        f"framecast alone: {first['label']} frames (≈ {first['frame_bytes'] / 1e3:.0f} KB) "
        f"published at {first['fps']:g} fps to one stream, watched at full size or at a scaled "
        "width (`/events?stream=…&width=N`); every row is a fresh server. **CPU per frame** is the "
        "server's utime + stime over the measured window divided by the frames published in it. "
        "**Over full size** is that minus the full-size row's: for one viewer it is the cost of "
        "scaling a frame (decode, resize, encode), less the small difference between writing one "
        "full-size and one scaled event. **Scaled / published** is framecast's own count "
        "(`GET /streams`: the variant's `scaled` against the stream's `published`, over the whole "
        "run, warm-up included, read while the viewers were still connected): once per frame "
        "whatever the number of viewers. **Event size** is bytes on the wire per event "
        "(HTTP chunk, SSE fields, JSON, base64).\n"
    )
    w(
        "| viewers | width | event size | frames in window | server CPU per frame | over full size "
        "| scaled / published | failed | events/s | drops mean / worst | latency p50 / p99 (ms) "
        "| server CPU (of one core) | loadgen CPU | sampled checks |"
    )
    w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        width = r.get("width")
        counters = r.get("server_counters") or {}
        found = [v for v in counters.get("variants", []) if v["width"] == width]
        if width and found:
            v = found[0]
            ratio = v["scaled"] / counters["published"] if counters.get("published") else 0
            scaled = f"{v['scaled']} / {counters['published']} ({ratio:.2f} per frame)"
            failed = str(v["failed"])
        elif width:
            scaled, failed = "–", "–"
        else:
            scaled, failed = "(not scaled)", ""
        dims = r.get("event_dims")
        shown = f"{width} ({dims})" if width and dims else (str(width) if width else "full size")
        extra = (
            f"{r['server_cpu_ms_per_frame'] - full['server_cpu_ms_per_frame']:+.2f} ms"
            if full and r is not full
            else ""
        )
        lat = r["latency_ms"]
        problems = "; ".join(r["integrity"])
        w(
            f"| {r['subscribers']} | {shown} | {r['event_bytes'] / 1e3:.1f} KB | {r['accepted']} | "
            f"**{r['server_cpu_ms_per_frame']:.2f} ms** | {extra} | {scaled} | {failed} | "
            f"{r['events_per_s']:.0f} | {drops(r)} | {lat['p50']:.1f} / {lat['p99']:.1f} | "
            f"{pct(r['server_cpu_share'], 0)} | {pct(r['loadgen_cpu_share'], 0)} | "
            f"{r['checked']} checked, {r['mismatched']} bad{' — ' + problems if problems else ''} |"
        )
    w("")
    notes = []
    by = {(r.get("width"), r["subscribers"]): r for r in rows}
    widths = sorted({r.get("width") for r in rows if r.get("width")}, reverse=True)
    for width in widths:
        counts = sorted(n for (w_, n) in by if w_ == width)
        if full and 1 in counts:
            one = by[(width, 1)]
            notes.append(
                f"scaling to {width} costs {one['server_cpu_ms_per_frame'] - full['server_cpu_ms_per_frame']:.2f} ms "
                f"of server CPU per frame ({one['server_cpu_ms_per_frame']:.2f} against "
                f"{full['server_cpu_ms_per_frame']:.2f} ms at full size, one viewer each)"
            )
        if len(counts) > 1:
            lo, hi = by[(width, counts[0])], by[(width, counts[-1])]
            extra = hi["subscribers"] - lo["subscribers"]
            per_viewer = (hi["server_cpu_ms_per_frame"] - lo["server_cpu_ms_per_frame"]) / extra * 1e3
            notes.append(
                f"at {width}, {hi['subscribers']} viewers instead of {lo['subscribers']} add "
                f"{per_viewer:.1f} µs per frame per viewer (writing the shared scaled event)"
            )
    for note in notes:
        w(f"- {note[0].upper()}{note[1:]}.")
    tiles = 16
    fps = first["fps"]
    grid = [(r.get("width"), r["event_bytes"]) for r in rows if r["subscribers"] == 1 and r["event_bytes"]]
    if full and len(grid) > 1:
        full_rate = tiles * fps * full["event_bytes"]
        parts = []
        for width, size in grid:
            if width:
                rate = tiles * fps * size
                parts.append(
                    f"{rate / 1e6:.1f} MB/s at width {width} ({full_rate / rate:.1f} × less, "
                    f"{1 - rate / full_rate:.0%} saved)"
                )
        w(
            f"- A grid of {tiles} tiles at {fps:g} fps receives {full_rate / 1e6:.1f} MB/s at full "
            f"size ({first['label']}); {'; '.join(parts)}."
        )
    w("")


def write_multiplex(w, rows):
    first = rows[0]
    streams = first["streams"]
    w(f"## One connection for {streams} streams vs {streams} connections\n")
    w(
        f"framecast alone: {streams} streams, each published at {first['fps']:g} fps with the same "
        f"{first['label']} frames (≈ {first['frame_bytes'] / 1e3:.0f} KB; one publishing "
        "connection per stream, their ticks spread over the period). Every viewer watches all "
        f"{streams}: on one connection (`/events?stream=s1&…&stream=s{streams}`, each event naming "
        f"its stream) or on {streams} connections, one per stream. **CPU per delivered frame** is "
        "the server's utime + stime over the measured window divided by the frame events "
        "delivered in it across all connections; drops are per connection and stream.\n"
    )
    w(
        "| viewers | connections | streams per connection | frames published/s | events/s delivered "
        "| event data MB/s | server CPU (of one core) | server CPU per delivered frame "
        "| drops mean / worst | latency p50 / p99 (ms) | accepted | loadgen CPU |"
    )
    w("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        lat = r["latency_ms"]
        per_conn = r["streams"] if r["multiplex"] else 1
        problems = "; ".join(r["integrity"])
        w(
            f"| {r['subscribers']} | {r['connections']} | {per_conn} | {r['ingest_fps']:.0f} | "
            f"{r['events_per_s']:.0f} | {r['payload_bytes_per_s'] / 1e6:.0f} | "
            f"{pct(r['server_cpu_share'], 0)} | **{r['server_cpu_us_per_event']:.1f} µs** | "
            f"{drops(r)} | {lat['p50']:.1f} / {lat['p99']:.1f} | {pct(r['accept_ratio'])} | "
            f"{pct(r['loadgen_cpu_share'], 0)}{' — ' + problems if problems else ''} |"
        )
    w("")
    for n in sorted({r["subscribers"] for r in rows}):
        one = [r for r in rows if r["subscribers"] == n and r["multiplex"]]
        many = [r for r in rows if r["subscribers"] == n and not r["multiplex"]]
        if one and many and many[-1]["server_cpu_us_per_event"] > 0:
            a, b = one[-1], many[-1]
            w(
                f"- {n} viewers: {a['server_cpu_us_per_event']:.1f} µs of server CPU per delivered "
                f"frame on one connection each, {b['server_cpu_us_per_event']:.1f} µs on "
                f"{streams} ({a['server_cpu_us_per_event'] / b['server_cpu_us_per_event']:.0%}); "
                f"drops {pct(a['drop_ratio']['mean'], 2)} against {pct(b['drop_ratio']['mean'], 2)}."
            )
    w("")


def cpu_of(r, name):
    """The `--watch` process called `name` in a run's line, if it was watched."""
    return next((p for p in r.get("processes") or [] if p["name"] == name), None)


def copies(r, node):
    """NATS bytes to and from framecast node `node` in the window, as copies of the frame
    bytes published (None if the node had no connection)."""
    for c in (r.get("nats") or {}).get("connections", []):
        if c["name"] == f"framecast {node}":
            return c
    return None


def setup_name(r):
    if r["setup"] == "single":
        return "A alone (no `--nats`)"
    return "cluster (A, B, C over NATS)"


def write_cluster(w, rows):
    first = rows[0]
    w("## A cluster over NATS (`--nats`)\n")
    w(
        f"framecast nodes joined through one nats-server with JetStream; {first['label']} frames "
        f"(≈ {first['frame_bytes'] / 1e3:.0f} KB) published at {first['fps']:g} fps to one stream, "
        "always on node **A**; the viewers watch on A or on **B**; node **C** has no viewers. "
        "\"A alone\" is the same binary and flags without `--nats`. Every row starts nats-server "
        "and the nodes afresh. **Pinning**: the node serving the viewers on CPU 0; nats-server, "
        "the other nodes and the generator share CPU 1 (with no viewers, A is on CPU 1 too). "
        "Latency is from the generator writing the upload to A to the whole event read from "
        "the viewer's node, on the generator's clock.\n"
    )
    latency = [r for r in rows if r["step"] == "latency"]
    if latency:
        w(f"### Latency, {latency[0]['subscribers']} viewers\n")
        w(
            "| frames go | viewers on | latency p50 / p99 / max (ms) | upload round trip p50 / p99 "
            "(ms) | drops mean / worst | accepted | viewer node CPU per delivered frame | "
            "sampled checks |"
        )
        w("|---|---|---|---|---|---|---|---|")
        for r in latency:
            how = {
                ("single", "A"): "A → A, no NATS",
                ("cluster", "A"): "A → NATS → A",
                ("cluster", "B"): "A → NATS → B",
            }.get((r["setup"], r["viewers_on"]), f"{r['setup']} → {r['viewers_on']}")
            lat, rtt = r["latency_ms"], r["publish_rtt_ms"]
            problems = "; ".join(r["integrity"])
            w(
                f"| {how} | {r['viewers_on']} | **{lat['p50']:.2f}** / **{lat['p99']:.2f}** / "
                f"{lat['max']:.1f} | {rtt['p50']:.2f} / {rtt['p99']:.2f} | {drops(r)} | "
                f"{pct(r['accept_ratio'])} | {r['server_cpu_us_per_event']:.0f} µs | "
                f"{r['checked']} checked, {r['mismatched']} bad{' — ' + problems if problems else ''} |"
            )
        w("")
        by = {(r["setup"], r["viewers_on"]): r for r in latency}
        alone, on_a, on_b = by.get(("single", "A")), by.get(("cluster", "A")), by.get(("cluster", "B"))
        if alone and on_b:
            w(
                f"- Through NATS to another node adds {on_b['latency_ms']['p50'] - alone['latency_ms']['p50']:.2f} ms "
                f"at p50 ({alone['latency_ms']['p50']:.2f} → {on_b['latency_ms']['p50']:.2f} ms) and "
                f"{on_b['latency_ms']['p99'] - alone['latency_ms']['p99']:.2f} ms at p99."
            )
        if alone and on_a:
            w(
                f"- Watched on the publishing node, `--nats` adds "
                f"{on_a['latency_ms']['p50'] - alone['latency_ms']['p50']:.2f} ms at p50: A numbers "
                "each frame by appending it to the JetStream log and serves it once NATS has "
                "acknowledged the append (or its own copy came back through its consumer); the "
                f"upload's round trip goes from {alone['publish_rtt_ms']['p50']:.2f} to "
                f"{on_a['publish_rtt_ms']['p50']:.2f} ms at p50."
            )
        w("")

    cost = [r for r in rows if r["step"] == "cost"]
    if cost:
        w("### CPU: viewers fed over NATS against fed by local uploads\n")
        w(
            "**Viewer node per delivered frame**: the CPU time (utime + stime, `/proc`) over the "
            "measured window of the node serving the viewers, divided by the frame events it "
            "delivered; on a single node that includes taking in the uploads, on B taking the "
            "frames from NATS. **A per published frame** and **nats-server per frame**: their CPU "
            "time over the window divided by the frames A accepted in it.\n"
        )
        w(
            "| viewers | frames reach the viewers | viewer node | viewer node CPU per delivered "
            "frame | viewer node CPU (of one core) | A per published frame | nats-server per frame "
            "| events/s | drops mean / worst | latency p50 / p99 (ms) | accepted | loadgen CPU |"
        )
        w("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in sorted(cost, key=lambda r: (r["subscribers"], r["setup"] != "single")):
            a, nats = cpu_of(r, "A"), cpu_of(r, "nats-server")
            n = r["subscribers"]
            if n == 0:
                how, node, per_event, share = "(no viewers: publishing only)", "–", "–", "–"
            else:
                how = "local uploads, one node" if r["setup"] == "single" else "over NATS from A"
                node = r["viewers_on"]
                per_event = f"**{r['server_cpu_us_per_event']:.1f} µs**"
                share = pct(r["server_cpu_share"], 0)
            if r["setup"] != "single":
                where = "`--nats`"
            elif n:
                where = "alone, serving the viewers too"
            else:
                where = "alone"
            a_cell = f"**{a['cpu_ms_per_frame']:.3f} ms** ({where})" if a else "–"
            nats_cell = f"{nats['cpu_ms_per_frame']:.3f} ms" if nats else "–"
            lat = r["latency_ms"]
            latency = f"{lat['p50']:.1f} / {lat['p99']:.1f}" if n else "–"
            problems = "; ".join(r["integrity"])
            w(
                f"| {n} | {how} | {node} | {per_event} | {share} | {a_cell} | {nats_cell} | "
                f"{r['events_per_s']:.0f} | {drops(r) if n else '–'} | {latency} | "
                f"{pct(r['accept_ratio'])} | {pct(r['loadgen_cpu_share'], 0)}"
                f"{' — ' + problems if problems else ''} |"
            )
        w("")
        pairs = {}
        for r in cost:
            pairs.setdefault(r["subscribers"], {})[r["setup"]] = r
        for n in sorted(pairs):
            single, cluster = pairs[n].get("single"), pairs[n].get("cluster")
            if not (single and cluster):
                continue
            if n == 0:
                a0, a1 = cpu_of(single, "A"), cpu_of(cluster, "A")
                if a0 and a1:
                    w(
                        f"- Publishing with no viewers anywhere, A spends {a1['cpu_ms_per_frame']:.3f} ms "
                        f"per frame with `--nats` against {a0['cpu_ms_per_frame']:.3f} ms alone."
                    )
            elif single["server_cpu_us_per_event"] > 0:
                x, y = single["server_cpu_us_per_event"], cluster["server_cpu_us_per_event"]
                w(
                    f"- {n} viewers: {y:.1f} µs of the viewer node's CPU per delivered frame when the "
                    f"frames come over NATS, {x:.1f} µs on a single node taking the uploads itself "
                    f"({y / x:.0%})."
                )
        w("")

    clustered = [r for r in rows if r["setup"] == "cluster" and r.get("nats")]
    if clustered:
        w("### NATS traffic per node\n")
        w(
            "From nats-server's `/connz` (monitoring port), read as the window opens and as it "
            "closes: the bytes NATS sent to each node's connection (`framecast NODE`) and received "
            "from it in the window, divided by the JPEG bytes A accepted in the window. A node "
            "following the stream should get about one copy of each frame (plus its NATS headers, "
            "≈ 0.5 %), a node without viewers of it about none; A sends one copy to NATS.\n"
        )
        w(
            "| step | viewers on | NATS → A | NATS → B | NATS → C | A → NATS | B → NATS | C → NATS "
            "| frame bytes in window |"
        )
        w("|---|---|---|---|---|---|---|---|---|")
        for r in clustered:
            cells_to, cells_from = [], []
            for node in "ABC":
                c = copies(r, node)
                cells_to.append(f"**{c['copies_to_client']:.3f}**" if c else "–")
                cells_from.append(f"{c['copies_from_client']:.3f}" if c else "–")
            on = f"{r['viewers_on']} ({r['subscribers']})" if r["subscribers"] else "nowhere"
            w(
                f"| {r['step']} | {on} | {' | '.join(cells_to)} | {' | '.join(cells_from)} | "
                f"{r['nats']['frame_bytes_published'] / 1e6:.1f} MB |"
            )
        w("")
        own = [r for r in clustered if r["viewers_on"] == "A" and copies(r, "A")]
        if own:
            back = copies(own[-1], "A")["copies_to_client"]
            w(
                f"- Watched on A, A gets its own frames back from NATS ({back:.3f} copies): it "
                "follows the log for its viewers like any node, and drops the frames it already "
                "has by their `seq`. Watched only elsewhere, it sends each frame once and gets "
                "nothing back but acknowledgements."
            )
            w("")
    w(
        "- CPU times come from `/proc/PID/stat` in clock ticks (10 ms): over a window of "
        f"{first['accepted']} frames a per-frame figure moves in steps of "
        f"{10 / max(first['accepted'], 1):.3f} ms, which matters for A and nats-server (a few "
        "ticks per window); longer steps (`STEP_SECONDS`) make them finer."
    )
    w(
        "- The machine has 2 cores; three framecast nodes, nats-server and the generator share "
        "them, and anything else running on the box shows up in these figures: read them as "
        "indicative."
    )
    w("")


def draw(steps, path):
    with tempfile.TemporaryDirectory() as tmp:
        series = []
        for server in SERVERS:
            for label in LABELS:
                points = sorted(
                    (r["subscribers"], r["server_cpu_share"] * 100, max(r["latency_ms"]["p99"], 0.01))
                    for r in steps
                    if r["server"] == server and r["label"] == label
                )
                if not points:
                    continue
                data = os.path.join(tmp, f"{server}-{label}.dat")
                with open(data, "w") as f:
                    for n, cpu, p99 in points:
                        f.write(f"{n} {cpu} {p99}\n")
                colour = {
                    ("framecast", "480p"): "#1f5fbf",
                    ("framecast", "720p"): "#7fa8e8",
                    ("framecast-mjpeg", "480p"): "#1e8449",
                    ("framecast-mjpeg", "720p"): "#82c99a",
                    ("floor", "480p"): "#333333",
                    ("floor", "720p"): "#999999",
                    ("nchan", "480p"): "#c0392b",
                    ("nchan", "720p"): "#e8998f",
                }[(server, label)]
                title = {"nchan": "Nchan", "framecast-mjpeg": "framecast MJPEG"}.get(server, server)
                title = f"{title} {label}"
                series.append((data, title, f"rgb '{colour}'", "5" if label == "480p" else "7"))
        if not series:
            return

        def plots(column):
            return ", ".join(
                f"'{data}' using 1:{column} with linespoints lc {lc} pt {pt} lw 2 title '{title}'"
                for data, title, lc, pt in series
            )

        script = f"""
set terminal pngcairo size 1400,560 font ',11'
set output '{path}'
set multiplot layout 1,2 title 'framecast (SSE, MJPEG) vs the floor vs nginx+Nchan: one stream at 30 fps, server on one core'
set grid
set key top left
set logscale x 2
set xlabel 'subscribers'
set ylabel 'server CPU (% of one core)'
set yrange [0:*]
plot {plots(2)}
set logscale y 10
set yrange [*:*]
set ylabel 'p99 publish-to-receive latency (ms)'
set arrow from graph 0, first 100 to graph 1, first 100 nohead dt 2 lc rgb 'red'
plot {plots(3)}
unset multiplot
"""
        subprocess.run(["gnuplot"], input=script, text=True, check=True)


if __name__ == "__main__":
    main()
