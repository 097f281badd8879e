"""Fixtures for the end-to-end suite.

Run through scripts/test, which starts PostgreSQL and Redis and sets TEST_DATABASE_URL,
TEST_REDIS_URL, CHAT_SERVICES_DIR and CHAT_BIN_DIR. Without them every test fails (never skips).
"""

from __future__ import annotations

import pytest

from support import Api, Processes, RawEngineIO, Services, Settings, SetupError, SioSession, create_user


def pytest_report_header(config):
    import os

    return [
        f"TEST_DATABASE_URL={os.environ.get('TEST_DATABASE_URL', '(unset)')}",
        f"TEST_REDIS_URL={os.environ.get('TEST_REDIS_URL', '(unset)')}",
        f"CHAT_BIN_DIR={os.environ.get('CHAT_BIN_DIR', '(unset)')}",
    ]


@pytest.fixture(scope="session")
def settings() -> Settings:
    try:
        return Settings.from_environment()
    except SetupError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="session")
def services(settings) -> Services:
    try:
        return Services(settings)
    except SetupError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture
def restore_services(services):
    """For tests that stop a server: whatever happens, both run again afterwards."""
    yield services
    services.ensure_running()


def _processes(settings, tmp_path_factory, name):
    procs = Processes(settings, tmp_path_factory.mktemp(name))
    yield procs
    problems = procs.close()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def procs(settings, tmp_path_factory):
    """Starts Gateway / MessageWorker processes for one test; all are stopped afterwards."""
    yield from _processes(settings, tmp_path_factory, "procs")


@pytest.fixture(scope="module")
def module_procs(settings, tmp_path_factory):
    yield from _processes(settings, tmp_path_factory, "module-procs")


@pytest.fixture(scope="module")
def gateway(module_procs):
    """One gateway with the default settings, shared by a test module."""
    return module_procs.gateway()


@pytest.fixture(scope="module")
def api(gateway) -> Api:
    return Api(gateway.url)


@pytest.fixture
def make_user(api):
    """Factory: make_user(login=True, **overrides) -> support.User on the module's gateway."""

    def make(login: bool = True, **overrides):
        return create_user(api, login=login, **overrides)

    return make


@pytest.fixture(autouse=True)
def _gateway_survives(request):
    """After every test that used the shared gateway: it must still be running."""
    yield
    if "gateway" in request.fixturenames:
        try:
            gw = request.getfixturevalue("gateway")
        except Exception:  # the gateway never started: that error is already reported
            return
        assert gw.alive(), f"the gateway died during this test (exit {gw.proc.returncode}):\n{gw.log_tail()}"


@pytest.fixture
def sio_session():
    """Factory: sio_session(base_url, namespace="/", **socketio.Client options) -> support.SioSession
    (python-socketio, websocket transport, no reconnection); all are disconnected after the test."""
    sessions = []

    def make(base_url: str, namespace: str = "/", **client_options) -> SioSession:
        session = SioSession(base_url, namespace, **client_options)
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.close()


@pytest.fixture
def raw_eio():
    """Factory: raw_eio(port, query=..., origin=None, headers=None) -> support.RawEngineIO (an open
    WebSocket to /socket.io/); every connection is closed after the test."""
    conns = []

    def make(port: int, *args, **kwargs) -> RawEngineIO:
        conn = RawEngineIO(port, *args, **kwargs)
        conns.append(conn)
        return conn

    yield make
    for conn in conns:
        conn.close()


# --- messages (issue 4) ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chat_cluster(module_procs):
    """Two gateways and two workers (short shard leases), shared by a test module."""
    from support import start_cluster

    return start_cluster(module_procs)


@pytest.fixture
def cluster(chat_cluster):
    """The module's cluster; after the test every one of its processes must still run."""
    yield chat_cluster
    chat_cluster.check_alive()
