"""Measures message search latency through the REST API for the search benchmark (bench/search.sh):
for each term, GET /api/messages/search on each gateway given (one keeps its indexes, the other has
index scans switched off: a sequential scan of the same query), interleaved, REPEAT times. Prints
one JSON line per gateway label and mode with p50/p99/max in ms and the mean result count."""

import json
import sys
import time

import requests


def quantile(sorted_values, q):
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, int(round(q * (len(sorted_values) - 1)))))
    return sorted_values[index]


def main() -> None:
    token, repeat, terms_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    gateways = [arg.split("=", 1) for arg in sys.argv[4:]]  # label=url
    terms = json.load(open(terms_file))
    sessions = {label: requests.Session() for label, _ in gateways}
    headers = {"Authorization": f"Bearer {token}"}
    for mode in ("substring", "word"):
        timings = {label: [] for label, _ in gateways}
        counts = {label: [] for label, _ in gateways}
        for _ in range(repeat):
            for term in terms[mode]:
                for label, url in gateways:
                    start = time.perf_counter()
                    response = sessions[label].get(f"{url}/api/messages/search", params={"q": term, "mode": mode, "limit": 20},
                                                   headers=headers, timeout=120)
                    elapsed = (time.perf_counter() - start) * 1000
                    if response.status_code != 200:
                        raise SystemExit(f"{label} {mode} {term!r}: {response.status_code} {response.text[:200]}")
                    timings[label].append(elapsed)
                    counts[label].append(len(response.json()["messages"]))
        for label, _ in gateways:
            values = sorted(timings[label])
            print(json.dumps({"gateway": label, "mode": mode, "queries": len(values), "p50": round(quantile(values, 0.5), 2),
                              "p99": round(quantile(values, 0.99), 2), "max": round(values[-1], 2),
                              "results": round(sum(counts[label]) / len(counts[label]), 1)}))


if __name__ == "__main__":
    main()
