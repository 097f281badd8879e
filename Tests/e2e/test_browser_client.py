"""The official browser Socket.IO client (socket.io-client 4.8.3 from ../shared/clients/) in
headless Chromium against two gateways and two workers behind haproxy in round robin, with no
sticky sessions
(issue 15): default options connect over long-polling and upgrade to WebSocket; polling alone
carries a whole conversation; the page, served from another origin, calls the REST API through
CORS; a page on an origin that is not allowed is refused."""

from __future__ import annotations

import json

import pytest
import requests

from browser import Chromium, StaticSite
from haproxy_lb import HAProxy
from support import create_user, start_cluster

pytestmark = pytest.mark.timeout(240)

# The test page: the real client plus small helpers the tests call with page.evaluate.
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>socket.io-client test page</title>
<script src="/socket.io.min.js"></script>
<script>
window.sockets = {};
window.received = {};
window.pids = {};
window.firstTransport = {};
// Opens a socket with the stock client; resolves with how it connected (or the connect_error).
window.openSocket = (name, url, options) => new Promise((resolve) => {
  const socket = io(url, Object.assign({reconnection: false}, options));
  window.sockets[name] = socket;
  window.received[name] = [];
  socket.onAny((event, ...args) => window.received[name].push({event, args}));
  // The recovery pid of each CONNECT answer (the client keeps it in a private field).
  socket.io.on("open", () => { window.firstTransport[name] = window.firstTransport[name] || socket.io.engine.transport.name; });
  socket.io.on("packet", (packet) => { if (packet.type === 0 && packet.data && packet.data.pid) window.pids[name] = packet.data.pid; });
  socket.on("connect", () => resolve({connected: true, transport: socket.io.engine.transport.name, first: window.firstTransport[name],
                                      id: socket.id}));
  socket.on("connect_error", (error) => resolve({connected: false, message: String(error && error.message)}));
});
window.transportOf = (name) => window.sockets[name].io.engine.transport.name;
window.call = (name, event, data) => window.sockets[name].timeout(5000).emitWithAck(event, data);
window.eventsNamed = (name, event) => window.received[name].filter((e) => e.event === event).map((e) => e.args[0]);
// REST through fetch (CORS applies: this page is on another origin than the API).
window.api = async (url, method, token, body) => {
  const headers = {"Content-Type": "application/json"};
  if (token) headers["Authorization"] = "Bearer " + token;
  const response = await fetch(url, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
  return {status: response.status, body: await response.json().catch(() => null),
          requestId: response.headers.get("X-Request-ID"), rateLimit: response.headers.get("RateLimit")};
};
window.apiError = async (url) => {
  try { await fetch(url); return "fetched"; } catch (error) { return "blocked: " + error.message; }
};
</script></head><body><p>test page</p></body></html>
"""


@pytest.fixture(scope="module")
def site():
    site = StaticSite({"client.html": PAGE})
    yield site
    site.close()


@pytest.fixture(scope="module")
def other_site():
    """A second origin that is not in ALLOWED_ORIGINS."""
    site = StaticSite({"client.html": PAGE})
    yield site
    site.close()


@pytest.fixture(scope="module")
def lb_cluster(module_procs, site, tmp_path_factory):
    cluster = start_cluster(module_procs, gateway_env={"ALLOWED_ORIGINS": site.origin})
    lb = HAProxy(tmp_path_factory.mktemp("haproxy"), [gw.port for gw in cluster.gateways], balance="roundrobin")
    yield cluster, lb
    lb.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with Chromium(tmp_path_factory.mktemp("chromium")) as chromium:
        yield chromium


def js(value) -> str:
    return json.dumps(value)


def open_socket(page, name, url, token, **options):
    return page.evaluate(f"openSocket({js(name)}, {js(url)}, {js({'auth': {'token': token}, **options})})")


def test_default_options_connect_over_polling_and_upgrade_to_websocket(lb_cluster, site, browser):
    cluster, lb = lb_cluster
    user = create_user_via(lb.url)
    page = browser.new_page(site.url("client.html"))
    outcome = open_socket(page, "s", lb.url, user.token)
    assert outcome["connected"], f"the stock client with default options did not connect: {outcome}"
    assert outcome["first"] == "polling", f"default options start with long-polling: {outcome}"
    # The probe lands on either gateway (no stickiness); the upgrade completes either way.
    assert page.wait_for("transportOf('s') === 'websocket'", timeout=10), "the session never upgraded to WebSocket"
    who = page.evaluate("call('s', 'whoami', null)")
    assert who["userId"] == user.id, who


def test_polling_alone_carries_a_whole_conversation_across_gateways(lb_cluster, site, browser):
    cluster, lb = lb_cluster
    alice, bob = create_user_via(lb.url), create_user_via(lb.url)
    page_a = browser.new_page(site.url("client.html"))
    page_b = browser.new_page(site.url("client.html"))
    for page, user in ((page_a, alice), (page_b, bob)):
        outcome = open_socket(page, "s", lb.url, user.token, transports=["polling"])
        assert outcome == {**outcome, "connected": True, "transport": "polling", "first": "polling"}, outcome
    sent = []
    for n in range(5):
        ack = page_a.evaluate(f"call('s', 'sendMessage', {js({'receiverId': bob.id, 'content': f'poll {n}'})})")
        assert "error" not in ack, ack
        sent.append(ack)
    got = page_b.wait_for("eventsNamed('s', 'receiveMessage').length >= 5 && eventsNamed('s', 'receiveMessage')")
    assert [m["content"] for m in got] == [f"poll {n}" for n in range(5)], got
    assert [m["id"] for m in got] == [m["id"] for m in sent]
    # Bob reads the last one: Alice hears the read receipt, still over polling.
    page_b.evaluate(f"call('s', 'messageRead', {js({'messageId': sent[-1]['id']})})")
    receipt = page_a.wait_for("eventsNamed('s', 'messageReadByReceiver')[0]")
    assert receipt["id"] == sent[-1]["id"] and receipt["isRead"] is True and receipt["readerId"] == bob.id, receipt
    assert page_a.evaluate("transportOf('s')") == "polling"
    assert page_b.evaluate("transportOf('s')") == "polling"
    # Every poll and post went through a plain balancer to whichever gateway: some were relayed.
    relayed = sum(metric(gw, 'chat_polling_relays_total{outcome="relayed"}') for gw in cluster.gateways)
    assert relayed > 0, "no polling request was relayed between the gateways (is the balancer sticky?)"


def test_the_page_calls_the_rest_api_through_cors(lb_cluster, site, browser):
    cluster, lb = lb_cluster
    page = browser.new_page(site.url("client.html"))
    name = "cors" + str(abs(hash(site.origin)) % 100000)
    signup = page.evaluate(f"api({js(lb.url + '/api/auth/signup')}, 'POST', null, "
                           f"{js({'username': name + 'u', 'email': name + '@example.com', 'password': 'correct horse battery'})})")
    assert signup["status"] == 201, signup
    login = page.evaluate(f"api({js(lb.url + '/api/auth/login')}, 'POST', null, "
                          f"{js({'email': name + '@example.com', 'password': 'correct horse battery'})})")
    assert login["status"] == 200, login
    token = login["body"]["token"]
    me = page.evaluate(f"api({js(lb.url + '/api/auth/profile')}, 'GET', {js(token)})")
    assert me["status"] == 200 and me["body"]["user"]["username"] == name + "u", me
    # The exposed headers are readable by the page.
    assert me["requestId"], f"X-Request-ID is not exposed: {me}"
    assert me["rateLimit"], f"RateLimit is not exposed: {me}"
    # The preflight, as the browser sent it, seen from outside.
    pre = requests.options(lb.url + "/api/auth/profile", headers={
        "Origin": site.origin, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization,content-type"}, timeout=5)
    assert pre.status_code == 204, pre.text
    assert pre.headers["Access-Control-Allow-Origin"] == site.origin
    assert "Origin" in pre.headers["Vary"]
    assert "authorization" in pre.headers["Access-Control-Allow-Headers"].lower()
    assert "GET" in pre.headers["Access-Control-Allow-Methods"]
    assert int(pre.headers["Access-Control-Max-Age"]) > 0


def test_a_disallowed_origin_is_refused(lb_cluster, other_site, browser):
    cluster, lb = lb_cluster
    user = create_user_via(lb.url)
    page = browser.new_page(other_site.url("client.html"))
    blocked = page.evaluate(f"apiError({js(lb.url + '/api/users')})")
    assert blocked.startswith("blocked"), f"a page on a disallowed origin read the API: {blocked}"
    for transports in (["polling"], ["websocket"]):
        outcome = open_socket(page, "x" + transports[0], lb.url, user.token, transports=transports)
        assert not outcome["connected"], f"a disallowed origin connected over {transports}: {outcome}"
    direct = requests.get(lb.url + "/api/users", headers={"Origin": other_site.origin, "Authorization": "Bearer " + user.token},
                          timeout=5)
    assert direct.status_code == 403 and direct.json()["error"]["code"] == "origin_not_allowed", direct.text
    assert "Access-Control-Allow-Origin" not in direct.headers


def create_user_via(base_url: str):
    from support import Api

    return create_user(Api(base_url))


def metric(gateway, series: str) -> float:
    text = requests.get(gateway.admin_url + "/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


def test_upgraded_sessions_work_on_whichever_gateway_took_the_probe(lb_cluster, site, browser):
    """Several default-option sockets: each upgrade's probe reaches a random gateway; the ones that
    reached the other gateway were handed over (no refusal, no polling forever) and still work."""
    cluster, lb = lb_cluster
    users = [create_user_via(lb.url) for _ in range(6)]
    pages = [browser.new_page(site.url("client.html")) for _ in users]
    for page, user in zip(pages, users):
        assert open_socket(page, "s", lb.url, user.token)["connected"]
    for page in pages:
        page.wait_for("transportOf('s') === 'websocket'", timeout=10)
    # Every socket sends to the next one and hears from the previous one.
    for index, page in enumerate(pages):
        receiver = users[(index + 1) % len(users)]
        ack = page.evaluate(f"call('s', 'sendMessage', {js({'receiverId': receiver.id, 'content': f'from {index}'})})")
        assert "error" not in ack, ack
    for index, page in enumerate(pages):
        got = page.wait_for("eventsNamed('s', 'receiveMessage')[0]")
        assert got["content"] == f"from {(index - 1) % len(users)}", got
    transfers = sum(metric(gw, 'chat_engine_sessions_total{kind="transfer"}') for gw in cluster.gateways)
    local = sum(metric(gw, 'chat_engine_sessions_total{kind="upgrade"}') for gw in cluster.gateways)
    assert transfers + local >= len(users), (transfers, local)
