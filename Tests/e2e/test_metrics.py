"""/metrics on the gateway and the worker (issue 6, item 5): Prometheus text format 0.0.4, parsed
with prometheus_client's parser; the named families exist, and REST requests, a socket and a
message processed by the worker move the counters.

Metrics are private: the gateway serves them on its admin port (ADMIN_PORT; support.py gives every
test gateway a free one, ChatProcess.admin_url), never on the public port; the worker's only port is
its admin port."""

from __future__ import annotations

import time

import requests
from prometheus_client.parser import text_string_to_metric_families

from support import Messages, RawConnection, poll, raw_request, worker_env

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DELIVERY = 5  # seconds for a message to go through the worker and reach a socket

COMMON = {
    # counters are listed without `_total`: that is how the parser names their families
    "chat_http_requests": "counter",
    "chat_postgres_query_duration_seconds": "histogram",
    "chat_redis_command_duration_seconds": "histogram",
    "chat_rate_limit_rejections": "counter",
    "chat_rate_limit_fallbacks": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_cpu_seconds": "counter",
    "process_open_fds": "gauge",
    "process_max_fds": "gauge",
    "process_start_time_seconds": "gauge",
    # issue 18: readiness and 503s on their own, for alerts
    "chat_http_unavailable": "counter",
    "chat_ready": "gauge",
    "chat_dependency_up": "gauge",
}
GATEWAY = {
    "chat_open_connections": "gauge",
    "chat_sockets": "gauge",
    "chat_connected_users": "gauge",
    "chat_max_connections": "gauge",
    "chat_socket_events_in": "counter",
    "chat_published_events_delivered": "counter",
    "chat_command_shards_mismatch": "gauge",
}
WORKER = {
    "chat_commands_processed": "counter",
    "chat_batch_size": "histogram",
    "chat_batch_duration_seconds": "histogram",
    "chat_dead_lettered": "counter",
    "chat_command_stream_length": "gauge",
    "chat_command_stream_pending": "gauge",
    "chat_command_oldest_pending_seconds": "gauge",
    "chat_command_shards_held": "gauge",
    "chat_command_shard_epoch": "gauge",
    "chat_shard_takeovers": "counter",
    "chat_shard_fenced_batches": "counter",
}


class Scrape:
    """One parsed scrape: family types and sample values by (name, sorted labels)."""

    def __init__(self, text: str):
        self.text = text
        self.types: dict[str, str] = {}
        self.samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for family in text_string_to_metric_families(text):
            self.types[family.name] = family.type
            for sample in family.samples:
                self.samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value

    def value(self, name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        assert key in self.samples, f"no sample {name}{labels or ''} in:\n{self.text}"
        return self.samples[key]


def scrape(base_url: str) -> Scrape:
    """GET /metrics on an admin URL (ChatProcess.admin_url)."""
    try:
        resp = requests.get(f"{base_url}/metrics", timeout=10)
    except requests.ConnectionError as error:
        raise AssertionError(f"nothing answers {base_url}/metrics (the admin port, env ADMIN_PORT): {error}") from None
    assert resp.status_code == 200, f"GET /metrics: {resp.status_code} {resp.text[:500]}"
    assert resp.headers["Content-Type"] == CONTENT_TYPE
    assert resp.text.endswith("\n")
    return Scrape(resp.text)


def check_families(result: Scrape, expected: dict[str, str]) -> None:
    for name, kind in expected.items():
        assert result.types.get(name) == kind, f"family {name} ({kind}) missing or mistyped: {result.types.get(name)}"


def check_histogram(result: Scrape, name: str) -> None:
    """Buckets are cumulative, end with +Inf, and +Inf equals _count."""
    buckets = sorted(((float(labels[0][1]), value) for (sample, labels), value in result.samples.items()
                      if sample == f"{name}_bucket"), key=lambda pair: pair[0])
    assert buckets and buckets[-1][0] == float("inf"), f"{name}: no +Inf bucket"
    counts = [value for _, value in buckets]
    assert counts == sorted(counts), f"{name}: buckets not cumulative: {buckets}"
    assert counts[-1] == result.value(f"{name}_count")
    assert result.value(f"{name}_sum") >= 0


def test_gateway_and_worker_metrics(gateway, procs, make_user, sio_session):
    worker = procs.worker(worker_env())
    before = scrape(gateway.admin_url)
    check_families(before, COMMON | GATEWAY)
    worker_before = scrape(worker.admin_url)
    check_families(worker_before, COMMON | WORKER)
    assert "chat_sockets" not in worker_before.types  # each service exports its own families

    # REST requests (sign-ups, logins), two sockets, one socket event, one message through the worker.
    sender, receiver = make_user(), make_user()
    sender_socket = sio_session(gateway.url).connect(token=sender.token)
    receiver_socket = sio_session(gateway.url).connect(token=receiver.token)
    sender_socket.call("ping", {"n": 1})
    receiver_mark, sender_mark = receiver_socket.mark(), sender_socket.mark()
    Messages(gateway.url, sender).send_ok(receiver.id, "metrics")
    receiver_socket.wait_for("receiveMessage", DELIVERY, since=receiver_mark)
    sender_socket.wait_for("messageSent", DELIVERY, since=sender_mark)

    after = scrape(gateway.admin_url)
    ok = after.value("chat_http_requests_total", status="2xx")
    assert ok >= before.value("chat_http_requests_total", status="2xx") + 3  # at least 2 sign-ups and 1 message
    assert after.value("chat_socket_events_in_total", event="ping") == before.value("chat_socket_events_in_total", event="ping") + 1
    assert after.value("chat_sockets") >= 2
    assert after.value("chat_connected_users") >= 2
    assert after.value("chat_open_connections") >= 2  # two websockets (a scrape on the admin port may not count)
    for event in ("receiveMessage", "messageSent"):  # to the receiver and to the sender's own socket
        assert (after.value("chat_published_events_delivered_total", event=event)
                == before.value("chat_published_events_delivered_total", event=event) + 1)
    assert after.value("chat_postgres_query_duration_seconds_count") > before.value("chat_postgres_query_duration_seconds_count")
    assert after.value("chat_redis_command_duration_seconds_count") > before.value("chat_redis_command_duration_seconds_count")
    assert after.value("process_resident_memory_bytes") > 1_000_000
    assert after.value("process_open_fds") > 0
    assert 0 < after.value("process_start_time_seconds") <= time.time()
    assert after.value("chat_rate_limit_rejections_total", limit="api") == 0
    assert after.value("chat_rate_limit_fallbacks_total", limit="api") == 0
    for name in ("chat_postgres_query_duration_seconds", "chat_redis_command_duration_seconds"):
        check_histogram(after, name)

    def worker_counted():
        result = scrape(worker.admin_url)
        return result if result.value("chat_commands_processed_total", type="send") >= 1 else None

    worker_after = poll(worker_counted, timeout=DELIVERY, what="the worker to count the message")
    assert worker_after.value("chat_batch_size_count") >= 1
    assert worker_after.value("chat_batch_duration_seconds_count") >= 1
    assert worker_after.value("chat_dead_lettered_total") == 0
    assert worker_after.value("process_cpu_seconds_total") > 0
    for name in ("chat_batch_size", "chat_batch_duration_seconds", "chat_postgres_query_duration_seconds"):
        check_histogram(worker_after, name)


def test_gateway_metrics_only_on_the_admin_port(gateway):
    """The public port (what the load balancer exposes) has no /metrics in any spelling; the admin
    port serves /metrics, /health and /ready."""
    for path in ("/metrics", "/metrics/", "/%6detrics", "/metrics?format=prometheus"):
        with RawConnection(gateway.port) as conn:  # raw: no client-side normalisation of the path
            conn.send(raw_request("GET", path))
            resp = conn.read_response()
        assert resp.status == 404, (
            f"GET {path} on the gateway's public port {gateway.port} answered {resp.status} "
            f"({resp.body[:120]!r}); metrics are served only on ADMIN_PORT")
        assert b"chat_http_requests" not in resp.body, f"GET {path} on the public port leaked metrics"
    try:
        admin = {path: requests.get(gateway.admin_url + path, timeout=5) for path in ("/metrics", "/health", "/ready")}
    except requests.ConnectionError as error:
        raise AssertionError(f"nothing listens on the gateway's ADMIN_PORT={gateway.admin_port} "
                             f"(env ADMIN_PORT must select the admin listener): {error}") from None
    for path, resp in admin.items():
        assert resp.status_code == 200, f"GET {path} on the admin port: {resp.status_code} {resp.text[:200]}"
    assert admin["/metrics"].headers.get("Content-Type") == CONTENT_TYPE, admin["/metrics"].headers
    assert "chat_sockets" in admin["/metrics"].text, "the admin port's /metrics lacks the gateway families"
