"""Connection state recovery as Socket.IO 4.6+ defines it, on any gateway (issue 15): the browser
client (socket.io-client 4.8.3 in headless Chromium) connected through haproxy to one of two
gateways gets back every message it missed, in order, once, with `socket.recovered === true`, when
that gateway is killed with SIGKILL while another user sends to it; and after a clean drop. Past
the window, or with a pid that is not the user's, the client is told to resync instead."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from browser import Chromium, StaticSite
from haproxy_lb import HAProxy
from support import Api, Messages, create_user, start_cluster
from test_browser_client import PAGE, js, metric

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def setup(procs, tmp_path):
    site = StaticSite({"client.html": PAGE})
    cluster = start_cluster(procs, gateway_env={"ALLOWED_ORIGINS": site.origin})
    (tmp_path / "haproxy").mkdir()
    lb = HAProxy(tmp_path / "haproxy", [gw.port for gw in cluster.gateways], balance="roundrobin")
    browser = Chromium(tmp_path / "chromium")
    yield cluster, lb, site, browser
    browser.close()
    lb.stop()
    site.close()


def sockets_on(gateway) -> float:
    return metric(gateway, "chat_sockets")


def gateway_holding_the_socket(cluster):
    """The gateway where the one socket of the test lives (after an upgrade it may have moved)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        counts = [sockets_on(gw) for gw in cluster.gateways]
        if sorted(counts) == [0, 1]:
            return cluster.gateways[counts.index(1)]
        time.sleep(0.05)
    raise AssertionError(f"the socket is not on exactly one gateway: {counts}")


def received_messages(page) -> list[dict]:
    return page.evaluate("eventsNamed('s', 'receiveMessage')")


def test_a_client_recovers_every_missed_message_on_the_other_gateway_after_a_kill(setup):
    cluster, lb, site, browser = setup
    api = Api(lb.url)
    alice, bob = create_user(api), create_user(api)
    page = browser.new_page(site.url("client.html"))
    outcome = page.evaluate(f"openSocket('s', {js(lb.url)}, {js({'auth': {'token': bob.token}, 'reconnection': True, 'reconnectionDelay': 200, 'reconnectionDelayMax': 500})})")
    assert outcome["connected"], outcome
    page.wait_for("transportOf('s') === 'websocket'", timeout=10)
    page.evaluate("window.sockets.s.on('connect', () => { window.reconnects = (window.reconnects || 0) + 1; "
                  "window.recoveredFlags = (window.recoveredFlags || []).concat([window.sockets.s.recovered]); }); 0")
    victim = gateway_holding_the_socket(cluster)
    survivor = next(gw for gw in cluster.gateways if gw is not victim)
    sender = Messages(survivor.url, alice)
    sent: list[dict] = []
    errors: list[str] = []

    def send_all():
        for n in range(20):
            try:
                sent.append(sender.send_ok(bob.id, f"missed? {n}", client_msg_id=f"rec-{n}"))
            except AssertionError as error:
                errors.append(str(error))
            time.sleep(0.05)

    thread = threading.Thread(target=send_all)
    thread.start()
    time.sleep(0.3)
    victim.stopped = True
    victim.proc.kill()  # SIGKILL: the socket's gateway is gone without a word
    thread.join(timeout=60)
    assert not errors, errors
    assert len(sent) == 20
    page.wait_for("window.reconnects >= 1", timeout=30)
    assert page.evaluate("window.recoveredFlags") == [True], (
        f"the client reconnected without recovering its session: {page.evaluate('window.recoveredFlags')}")
    assert page.evaluate("window.sockets.s.recovered") is True
    got = page.wait_for("eventsNamed('s', 'receiveMessage').length >= 20 && eventsNamed('s', 'receiveMessage')", timeout=20)
    time.sleep(0.5)
    got = received_messages(page)
    assert [m["id"] for m in got] == [m["id"] for m in sent], (
        "every message once, in order: " + json.dumps([(m["id"], m["content"]) for m in got]))
    assert sockets_on(survivor) == 1
    assert not page.evaluate("eventsNamed('s', 'resync').length"), "a recovered client is not told to resync"


def test_a_clean_drop_recovers_on_any_gateway_and_a_foreign_pid_resyncs(setup):
    cluster, lb, site, browser = setup
    api = Api(lb.url)
    alice, bob = create_user(api), create_user(api)
    page = browser.new_page(site.url("client.html"))
    outcome = page.evaluate(f"openSocket('s', {js(lb.url)}, {js({'auth': {'token': bob.token}, 'reconnection': True, 'reconnectionDelay': 1500, 'reconnectionDelayMax': 1500, 'randomizationFactor': 0})})")
    assert outcome["connected"], outcome
    page.evaluate("window.sockets.s.on('connect', () => { window.recoveredFlags = (window.recoveredFlags || []).concat([window.sockets.s.recovered]); }); 0")
    first = Messages(cluster.gateways[0].url, alice).send_ok(bob.id, "before the drop")
    page.wait_for("eventsNamed('s', 'receiveMessage').length === 1")
    # The transport drops (as on a network change); the client reconnects 1.5 s later.
    page.evaluate("window.sockets.s.io.engine.close(); 0")
    during = [Messages(cluster.gateways[n % 2].url, alice).send_ok(bob.id, f"during {n}") for n in range(3)]
    page.wait_for("(window.recoveredFlags || []).length >= 1", timeout=15)
    assert page.evaluate("window.recoveredFlags") == [True]
    page.wait_for("eventsNamed('s', 'receiveMessage').length >= 4")
    time.sleep(0.3)
    assert [m["id"] for m in received_messages(page)] == [first["id"]] + [m["id"] for m in during], (
        page.evaluate("JSON.stringify(window.received.s.map(e => [e.event, e.event === 'receiveMessage' ? e.args[0].id : e.args[0]]))"))
    # A pid is the user's own: another user's token with it gets a fresh session and resync.
    pid = page.evaluate("window.pids.s")
    assert pid, "the CONNECT answer carries a pid"
    import socketio

    other = socketio.Client(reconnection=False)
    events = []
    other.on("*", lambda event, *args: events.append((event, args)))
    other.connect(cluster.gateways[1].url, auth={"token": alice.token, "pid": pid, "offset": "0"}, transports=["websocket"])
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(e == "resync" for e, _ in events):
            time.sleep(0.05)
        assert ("resync", ({"reason": "unknown_session"},)) in events, events
    finally:
        other.disconnect()
    resyncs = sum(metric(gw, 'chat_socket_recoveries_total{outcome="resync"}') for gw in cluster.gateways)
    assert resyncs >= 1
