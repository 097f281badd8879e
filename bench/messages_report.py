"""The messages benchmark's report: tables, ratios and the results file the plots are drawn from.

bench/messages.sh measures each offered rate of each series (direct pairs, a room, the seeds'
stack) with ChatLoad and the CPU ticks of every process around it, one JSON line per point:
    {"series", "offered", "seconds", "hz", "before": "name=ticks ...", "after": "...", "load": <ChatLoad summary>}
and the same-run references in one JSON object (raw Postgres insert, raw Redis XADD and PUBLISH).

This script prints nothing; it writes the markdown report (--markdown) and the results JSON
(--json, the input of bench/plot_messages.py).

Usage: messages_report.py POINTS.jsonl REFERENCES.json --pairs N --room-size M --p99-bound-ms B
                          --markdown OUT.md --json OUT.json
       messages_report.py POINTS.jsonl --batch-at-best --p99-bound-ms B
                          (prints the workers' mean batch size at the best direct point)
"""

import argparse
import json
import sys

SERIES = {
    "direct": "this system, direct pairs",
    "room": "this system, {room_size}-member room",
    "peer": "seeds' stack (python-socketio + Redis manager + Postgres)",
}
OUR_PROCESSES = ["sender_gateway", "receiver_gateway", "workers", "redis", "postgres"]
# Not processes: the workers' batch counters ride along with the CPU ticks.
COUNTERS = {"batches", "entries"}
PEER_PROCESSES = ["sender_instance", "receiver_instance", "redis", "postgres"]


def ticks(text):
    """'name=ticks ...' as a dict."""
    return {name: int(value) for name, value in (item.split("=") for item in text.split())}


def point(line):
    """One measured rate: throughput, latencies, errors and CPU µs per message and per delivery."""
    load = line["load"]
    seconds = line["seconds"]
    acked = load.get("messagesAcknowledged", 0)
    delivered = load.get("messagesDelivered", 0)
    before, after = ticks(line["before"]), ticks(line["after"])
    cpu_seconds = {name: (after[name] - before[name]) / line["hz"] for name in after if name not in COUNTERS}
    batches = after.get("batches", 0) - before.get("batches", 0)
    entries = after.get("entries", 0) - before.get("entries", 0)
    # A gateway hop: receiving one send and submitting it, or writing one event to one socket.
    # Per message the sender's socket gets its ack and `messageSent`; each delivery is one more.
    hops = 3 * acked + delivered
    gateways = sum(cpu_seconds.get(name, 0) for name in ("sender_gateway", "receiver_gateway"))
    return {
        "offered": line["offered"],
        "throughput": acked / seconds,
        "deliveriesPerSecond": delivered / seconds,
        "acknowledged": acked,
        "delivered": delivered,
        "errors": load.get("messageErrorsByCode", {}),
        "ack": load.get("ackLatencyMs"),
        "delivery": load.get("deliveryLatencyMs"),
        "ackFromSend": load.get("ackFromSendLatencyMs"),
        "cpuUsPerMessage": {name: value * 1e6 / acked if acked else None for name, value in cpu_seconds.items()},
        "cpuUsPerDelivery": {name: value * 1e6 / delivered if delivered else None for name, value in cpu_seconds.items()},
        "gatewayCpuUsPerHop": gateways * 1e6 / hops if hops and "sender_gateway" in cpu_seconds else None,
        "meanBatch": entries / batches if batches else None,
    }


def best_point(points, bound):
    """The point with the highest acknowledged rate whose ack p99 stays under `bound` ms (past
    saturation an open loop still gets every ack, seconds late); None when none does."""
    within = [p for p in points if p["ack"] and p["ack"]["p99"] <= bound]
    return max(within, key=lambda p: p["throughput"], default=None)


def sustained(points, bound):
    best = best_point(points, bound)
    return best["throughput"] if best else 0


def fmt(value, decimals=1):
    if value is None:
        return "-"
    return f"{value:,.{decimals}f}" if decimals else f"{value:,.0f}"


def latency(summary, keys=("p50", "p99", "p999")):
    return " / ".join(fmt(summary[k]) for k in keys) if summary else "-"


def errors_text(errors):
    return ", ".join(f"{code} {count}" for code, count in sorted(errors.items())) or "none"


def table(points, processes, per_delivery):
    head = ["offered/s", "acknowledged/s", "deliveries/s", "ack p50 / p99 / p99.9 ms", "delivery p50 / p99 / p99.9 ms", "errors"]
    head += [name.replace("_", " ") for name in processes]
    ours = processes is OUR_PROCESSES
    if ours:
        head += ["gateway µs per hop", "mean batch"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * 5 + "---|" + "---:|" * (len(head) - 6)]
    for p in points:
        cpu = p["cpuUsPerDelivery" if per_delivery else "cpuUsPerMessage"]
        cells = [fmt(p["offered"], 0), fmt(p["throughput"], 0), fmt(p["deliveriesPerSecond"], 0), latency(p["ack"]),
                 latency(p["delivery"]), errors_text(p["errors"])]
        cells += [fmt(cpu.get(name)) for name in processes]
        if ours:
            cells += [fmt(p["gatewayCpuUsPerHop"]), fmt(p["meanBatch"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("points")
    parser.add_argument("references", nargs="?")
    parser.add_argument("--batch-at-best", action="store_true")
    parser.add_argument("--pairs", type=int)
    parser.add_argument("--room-size", type=int)
    parser.add_argument("--p99-bound-ms", type=float, required=True)
    parser.add_argument("--markdown")
    parser.add_argument("--json")
    args = parser.parse_args()
    try:
        with open(args.points) as file:
            lines = [json.loads(text) for text in file if text.strip()]
        references = {}
        if not args.batch_at_best:
            if None in (args.references, args.pairs, args.room_size, args.markdown, args.json):
                parser.error("REFERENCES, --pairs, --room-size, --markdown and --json are needed for the report")
            with open(args.references) as file:
                references = json.load(file)
    except (OSError, ValueError) as error:
        print(f"messages_report: {error}", file=sys.stderr)
        return 2

    series = {}
    for line in lines:
        series.setdefault(line["series"], []).append(point(line))
    lone_points = series.pop("lone", [])
    bound = args.p99_bound_ms
    if args.batch_at_best:
        best = best_point(series.get("direct", []), bound)
        print(round(best["meanBatch"]) if best and best["meanBatch"] else "")
        return 0
    raw = references.get("rawInsertRowsPerSecond") or 0
    shaped = references.get("shapedInsertRowsPerSecond") or 0
    best = {name: sustained(points, bound) for name, points in series.items()}

    out = []
    for lone in lone_points:
        fromsend = lone.get("ackFromSend")
        out += [f"A lone message (one pair, {fmt(lone['offered'], 0)} messages/s, nothing else running): ack p50 / p99 "
                f"{latency(lone['ack'], ('p50', 'p99'))} ms from its intended send time, "
                f"{latency(fromsend, ('p50', 'p99'))} ms from the moment its frame was written (without the load "
                "generator's timer slack); delivery p50 / p99 "
                f"{latency(lone['delivery'], ('p50', 'p99'))} ms.", ""]
    if "direct" in series:
        out += [f"Direct messages: {args.pairs} pairs, senders on one gateway and receivers on the other; CPU in µs per "
                "acknowledged message over the window.", "", table(series["direct"], OUR_PROCESSES, False), ""]
    if "room" in series:
        out += [f"A {args.room_size}-member room, half of its members on each gateway, each sending in turn; every "
                f"message reaches {args.room_size - 1} sockets. CPU in µs per delivery (per message: "
                f"x{args.room_size - 1}).", "", table(series["room"], OUR_PROCESSES, True), ""]
    if "peer" in series:
        out += ["The seeds' stack (../shared/peer, two instances, same servers, same generator and pairs); CPU in µs "
                "per acknowledged message.", "", table(series["peer"], PEER_PROCESSES, False), ""]
    out += ["References, same run and servers:", "", "| reference | rate | Postgres CPU µs per row |", "|---|---:|---:|",
            f"| raw insert, {references.get('rawInsertBatch')}-row batches into a bare table (pgbench, 4 clients) | "
            f"{fmt(raw, 0)} rows/s | {fmt(references.get('rawInsertCpuUsPerRow'))} |",
            f"| raw insert, {references.get('shapedInsertBatch')}-row batches into a copy of `messages` (same indexes, "
            f"checks, foreign keys) | {fmt(shaped, 0)} rows/s | {fmt(references.get('shapedInsertCpuUsPerRow'))} |",
            f"| Redis XADD (pipelined 16, 50 clients) | {fmt(references.get('xaddPerSecond'), 0)} /s | |",
            f"| Redis PUBLISH (pipelined 16, 50 clients) | {fmt(references.get('publishPerSecond'), 0)} /s | |", ""]
    summary = [f"Highest acknowledged rate with ack p99 under {fmt(bound, 0)} ms:"]
    if "direct" in series:
        ratio = best["direct"] / raw if raw else 0
        shaped_ratio = best["direct"] / shaped if shaped else 0
        summary.append(f"direct {fmt(best['direct'], 0)}/s = **{ratio:.3f}** of the bare raw insert rate and "
                       f"**{shaped_ratio:.3f}** of the same rows' raw insert")
        top = best_point(series["direct"], bound)
        pg = top["cpuUsPerMessage"].get("postgres") if top else None
        shaped_cpu = references.get("shapedInsertCpuUsPerRow")
        if pg and shaped_cpu:
            summary.append(f"there Postgres spent {fmt(pg)} µs per message, {pg / shaped_cpu:.1f}x the same rows' raw "
                           f"insert ({fmt(shaped_cpu)} µs per row)")
    if "room" in series:
        summary.append(f"room {fmt(best['room'], 0)} messages/s ({fmt(best['room'] * (args.room_size - 1), 0)} deliveries/s)")
    if "peer" in series and "direct" in series:
        ratio = best["direct"] / best["peer"] if best["peer"] else 0
        summary.append(f"the seeds' stack {fmt(best['peer'], 0)}/s: this system **{ratio:.1f}x**")
    out.append(summary[0] + " " + "; ".join(summary[1:]) + ".")
    with open(args.markdown, "w") as file:
        file.write("\n".join(out) + "\n")

    results = {
        "title": "Messages: 2 gateways, 2 workers, release build, durable commits",
        "p99BoundMs": bound,
        "best": best,
        "series": [{"name": name, "label": SERIES.get(name, name).format(room_size=args.room_size), "points": points}
                   for name, points in series.items()],
        "references": references,
        "lone": lone_points,
    }
    with open(args.json, "w") as file:
        json.dump(results, file, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
