"""Helpers for the end-to-end suite: chat processes, the JSON API, a raw HTTP/1.1 client, and the
local PostgreSQL/Redis servers that scripts/test starts (controlled through scripts/lib/services.sh).
"""

from __future__ import annotations

import base64
import collections
import json
import os
import pathlib
import select
import signal
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field

import requests

REPO = pathlib.Path(__file__).resolve().parents[2]
SERVICES_SCRIPT = REPO / "scripts" / "lib" / "services.sh"
HTTP_TIMEOUT = 10  # seconds for one API call; a server that needs longer is hanging


# --- configuration -----------------------------------------------------------------------------


class SetupError(Exception):
    """The environment scripts/test provides is missing or broken."""


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str
    bin_dir: pathlib.Path
    services_dir: pathlib.Path | None
    pg_bin: pathlib.Path
    jwt_secret: str

    @staticmethod
    def from_environment() -> "Settings":
        missing = [n for n in ("TEST_DATABASE_URL", "TEST_REDIS_URL") if not os.environ.get(n)]
        if missing:
            raise SetupError(
                f"{', '.join(missing)} not set: run the suite through scripts/test, which starts "
                "PostgreSQL and Redis and sets them (the suite never skips for lack of servers)"
            )
        bin_dir = pathlib.Path(os.environ.get("CHAT_BIN_DIR", REPO / ".build" / "debug"))
        if not bin_dir.is_absolute():
            bin_dir = REPO / bin_dir
        for name in ("Gateway", "MessageWorker"):
            if not os.access(bin_dir / name, os.X_OK):
                raise SetupError(f"{bin_dir / name} is missing: run `swift build` (or set CHAT_BIN_DIR)")
        services_dir = os.environ.get("CHAT_SERVICES_DIR")
        return Settings(
            database_url=os.environ["TEST_DATABASE_URL"],
            redis_url=os.environ["TEST_REDIS_URL"],
            bin_dir=bin_dir,
            services_dir=pathlib.Path(services_dir) if services_dir else None,
            pg_bin=pathlib.Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")),
            # One secret for the whole run, so tokens from one gateway verify on another.
            jwt_secret=base64.b64encode(os.urandom(48)).decode(),
        )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique(prefix: str = "u") -> str:
    """A fresh name, valid as a username (3-32 of [A-Za-z0-9_.-])."""
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


# --- the local servers -------------------------------------------------------------------------


class Services:
    """Stops and starts the PostgreSQL and Redis of scripts/test (same ports after a restart)."""

    def __init__(self, settings: Settings):
        if settings.services_dir is None:
            raise SetupError("CHAT_SERVICES_DIR is not set: run the suite through scripts/test")
        self.dir = settings.services_dir

    def _run(self, *commands: str) -> str:
        proc = subprocess.run(
            ["bash", str(SERVICES_SCRIPT), str(self.dir), *commands],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"services.sh {' '.join(commands)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout

    def pg_stop(self) -> None:
        self._run("pg-stop")

    def pg_start(self) -> None:
        self._run("pg-start")

    def redis_stop(self) -> None:
        self._run("redis-stop")

    def redis_start(self) -> None:
        self._run("redis-start")

    def ensure_running(self) -> None:
        self._run("pg-start", "redis-start")

    def env(self) -> dict[str, str]:
        out = self._run("env")
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def psql(settings: Settings, sql: str, database_url: str | None = None) -> str:
    """Runs SQL through psql (as role chat) and returns unaligned, tuples-only output."""
    proc = subprocess.run(
        [str(settings.pg_bin / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
         "-d", database_url or settings.database_url, "-c", sql],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"psql failed ({sql!r}): {proc.stderr}")
    return proc.stdout


def database_url_for(settings: Settings, name: str) -> str:
    base, _, _ = settings.database_url.rpartition("/")
    return f"{base}/{name}"


# --- chat processes ----------------------------------------------------------------------------


def stop_process(proc: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM a helper server (haproxy, nginx, redis, ...) and wait; SIGKILL after `timeout` s."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def base_env(settings: Settings) -> dict[str, str]:
    """What every process gets unless a test overrides it: fast scrypt, development mode, rate limits
    that never trigger."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "CHAT_ENV": "development",
        "HOST": "127.0.0.1",
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "JWT_SECRET": settings.jwt_secret,
        "SCRYPT_LOG_N": "12",
        "LOG_LEVEL": "info",
        # Limits high enough never to trigger (issue 5): a test that checks a limit starts its own
        # processes with the production defaults (default_limits_env() pops these).
        "RATE_LIMIT_API": "1000000/1m",
        "RATE_LIMIT_LOGIN_ACCOUNT": "1000000/1m",
        "RATE_LIMIT_LOGIN_IP": "1000000/1m",
        "RATE_LIMIT_MESSAGES": "1000000/10s",
        # The per-socket event budget too: streaming tests send far faster than a person types.
        "SOCKET_EVENT_RATE": "1000000",
        "SOCKET_EVENT_BURST": "1000000",
        "SOCKET_EVENT_FLOOD_CLOSE": "0",
    }


def merged_env(settings: Settings, overrides: dict[str, str | None] | None) -> dict[str, str]:
    env = base_env(settings)
    for key, value in (overrides or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


@dataclass
class ChatProcess:
    """One Gateway or MessageWorker started by a test; logs go to files in a tmp dir."""

    name: str
    port: int  # HTTP port for the gateway, admin port for the worker
    proc: subprocess.Popen
    out_path: pathlib.Path
    err_path: pathlib.Path
    env: dict[str, str] = field(repr=False)
    stopped: bool = False
    # The private admin port (/metrics, /health, /ready): ADMIN_PORT of a gateway; for a worker the
    # same as `port`.
    admin_port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        assert self.admin_port is not None, f"{self.name} on port {self.port} has no admin port"
        return f"http://127.0.0.1:{self.admin_port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def logs(self) -> str:
        out = self.out_path.read_text(errors="replace") if self.out_path.exists() else ""
        err = self.err_path.read_text(errors="replace") if self.err_path.exists() else ""
        return out + err

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.logs().splitlines()[-lines:])

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode} before answering /health:\n{self.log_tail()}"
                )
            try:
                if requests.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer /health within {timeout}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 10) -> tuple[int, bool]:
        """SIGTERM, then SIGKILL after `timeout` s. Returns (exit code, whether SIGKILL was needed)."""
        self.stopped = True
        if self.proc.poll() is not None:
            return self.proc.returncode, False
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout), False
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10), True


class Processes:
    """Starts chat processes and guarantees they are stopped; reports ones that died on their own."""

    def __init__(self, settings: Settings, log_dir: pathlib.Path):
        self.settings = settings
        self.log_dir = log_dir
        self.started: list[ChatProcess] = []
        self.counter = 0

    def _spawn(self, name: str, port_var: str, env: dict[str, str | None] | None,
               args: list[str], wait: bool, admin_port_var: str | None = None) -> ChatProcess:
        """Starts `name` on a free port_var (unless env fixes it); admin_port_var (a second port,
        e.g. the gateway's ADMIN_PORT) gets a free port too unless env sets it."""
        fixed_port = env is not None and env.get(port_var) is not None
        fixed_admin = admin_port_var is None or (env is not None and admin_port_var in env)
        last_error: Exception | None = None
        for _attempt in range(3):
            full_env = merged_env(self.settings, env)
            if not fixed_port:
                full_env[port_var] = str(free_port())
            if not fixed_admin:
                full_env[admin_port_var] = str(free_port())
            self.counter += 1
            stem = self.log_dir / f"{name}-{self.counter}"
            out_path, err_path = stem.with_suffix(".out.log"), stem.with_suffix(".err.log")
            with open(out_path, "wb") as out, open(err_path, "wb") as err:
                proc = subprocess.Popen(
                    [str(self.settings.bin_dir / name), *args],
                    env=full_env, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                )
            cp = ChatProcess(name, int(full_env[port_var]), proc, out_path, err_path, full_env)
            admin = full_env.get(admin_port_var or "ADMIN_PORT")  # a worker's port_var is ADMIN_PORT
            cp.admin_port = int(admin) if admin and admin.isdigit() and int(admin) > 0 else None
            self.started.append(cp)
            if not wait:
                return cp
            try:
                cp.wait_healthy()
                return cp
            except RuntimeError as error:
                last_error = error
                cp.stop()
                # A port picked by free_port() may be taken by someone else in between: retry.
                if fixed_port or "in use" not in cp.logs().lower():
                    raise
        assert last_error is not None
        raise last_error

    def gateway(self, env: dict[str, str | None] | None = None, wait: bool = True) -> ChatProcess:
        env = dict(env or {})
        env.setdefault("GATEWAY_ID", unique("gw"))
        # The gateway serves /metrics (and /health, /ready) on a private ADMIN_PORT (default 9095):
        # each test gateway gets a free one (ChatProcess.admin_port / admin_url).
        return self._spawn("Gateway", "PORT", env, [], wait, admin_port_var="ADMIN_PORT")

    def worker(self, env: dict[str, str | None] | None = None, wait: bool = True) -> ChatProcess:
        env = dict(env or {})
        env.setdefault("WORKER_ID", unique("wk"))
        return self._spawn("MessageWorker", "ADMIN_PORT", env, [], wait)

    def close(self) -> list[str]:
        """Stops everything; returns complaints (crashed early, or ignored SIGTERM)."""
        problems = []
        for cp in self.started:
            if cp.stopped:
                continue
            if not cp.alive():
                problems.append(f"{cp.name} on port {cp.port} died during the test "
                                f"(exit {cp.proc.returncode}):\n{cp.log_tail()}")
                cp.stopped = True
                continue
            _code, killed = cp.stop()
            if killed:
                problems.append(f"{cp.name} on port {cp.port} ignored SIGTERM for 10 s and was killed")
        return problems


def run_binary(settings: Settings, name: str, args: list[str],
               env: dict[str, str | None] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Runs a binary to completion (e.g. --help, --migrate-only) with the base environment."""
    return subprocess.run(
        [str(settings.bin_dir / name), *args],
        env=merged_env(settings, env), capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


# --- the JSON API ------------------------------------------------------------------------------


class Api:
    """Thin JSON client for one gateway."""

    def __init__(self, base_url: str):
        self.base = base_url
        self.session = requests.Session()

    def request(self, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        return self.session.request(method, self.base + path, headers=headers, **kwargs)

    def get(self, path: str, token: str | None = None, **kwargs) -> requests.Response:
        return self.request("GET", path, token, **kwargs)

    def post(self, path: str, body=None, token: str | None = None, **kwargs) -> requests.Response:
        if body is not None:
            kwargs["json"] = body
        return self.request("POST", path, token, **kwargs)

    def signup(self, username: str, email: str, password: str, display_name: str | None = None,
               path: str = "/api/auth/signup") -> requests.Response:
        body = {"username": username, "email": email, "password": password}
        if display_name is not None:
            body["displayName"] = display_name
        return self.post(path, body)

    def login(self, password: str, email: str | None = None, username: str | None = None) -> requests.Response:
        body = {"password": password}
        if email is not None:
            body["email"] = email
        if username is not None:
            body["username"] = username
        return self.post("/api/auth/login", body)

    def profile(self, token: str | None, path: str = "/api/auth/profile") -> requests.Response:
        return self.get(path, token)

    def refresh(self, refresh_token: str) -> requests.Response:
        return self.post("/api/auth/refresh", {"refreshToken": refresh_token})

    def logout(self, token: str | None) -> requests.Response:
        return self.post("/api/auth/logout", token=token)


@dataclass
class User:
    id: object
    username: str
    email: str
    password: str
    token: str | None = None
    refresh_token: str | None = None


def create_user(api: Api, login: bool = True, **overrides) -> User:
    """Signs up a fresh user (unique name) and, by default, logs in."""
    username = overrides.get("username") or unique()
    email = overrides.get("email") or f"{username.lower()}@example.com"
    password = overrides.get("password") or "correct horse battery"
    resp = api.signup(username, email, password, overrides.get("display_name"))
    assert resp.status_code == 201, f"signup failed: {resp.status_code} {resp.text}"
    user = User(user_of(resp.json())["id"], username, email, password)
    if login:
        resp = api.login(password, email=email)
        assert resp.status_code == 200, f"login failed: {resp.status_code} {resp.text}"
        user.token = resp.json()["token"]
        user.refresh_token = resp.json()["refreshToken"]
    return user


def user_of(body: dict) -> dict:
    """The user object of a response, whether wrapped as {"user": {...}} or at the top level."""
    if isinstance(body.get("user"), dict):
        return body["user"]
    return body


def error_of(resp: requests.Response) -> tuple[str, str]:
    """(code, message) of an error response; asserts the {"error": {"code", "message"}} shape."""
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f"error body is not JSON: {resp.status_code} {resp.text!r}") from None
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), f"not an error body: {body!r}"
    code, message = body["error"].get("code"), body["error"].get("message")
    assert isinstance(code, str) and code, f"error without code: {body!r}"
    assert isinstance(message, str) and message, f"error without message: {body!r}"
    return code, message


def expect_error(resp: requests.Response, status: int, code: str) -> str:
    """Asserts status and error code; returns the message."""
    assert resp.status_code == status, f"expected {status} {code}, got {resp.status_code}: {resp.text}"
    got, message = error_of(resp)
    assert got == code, f"expected code {code}, got {got}: {message}"
    return message


def jwt_parts(token: str) -> tuple[dict, dict]:
    def decode(part: str) -> dict:
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))

    header, payload, _sig = token.split(".")
    return decode(header), decode(payload)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def poll(predicate, timeout: float, interval: float = 0.25, what: str = "condition"):
    """Calls predicate until it returns something other than None or False; returns that, or fails
    after timeout s. (Not plain truthiness: a requests.Response with an error status is falsy.)"""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = predicate()
            if last is not None and last is not False:
                return last
        except (requests.RequestException, OSError) as error:
            last = error
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout}s (last: {last!r})")
        time.sleep(interval)


# --- raw HTTP/1.1 over a socket ----------------------------------------------------------------


@dataclass
class RawResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def json(self):
        return json.loads(self.body)

    def error_code(self) -> str:
        return self.json()["error"]["code"]


class RawConnection:
    """A plain TCP connection for requests `requests` would not send (bad framing, pipelining)."""

    def __init__(self, port: int, timeout: float = 10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.eof = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_until_answered(self, data: bytes, chunk: int = 8192) -> None:
        """Sends data in pieces, stopping early once the server has answered or closed.

        The server may reject an oversized request before reading all of it; stopping then avoids
        a TCP reset that would destroy its answer in our receive buffer."""
        for start in range(0, len(data), chunk):
            readable, _, _ = select.select([self.sock], [], [], 0)
            if readable:
                return
            try:
                self.sock.sendall(data[start:start + chunk])
            except (BrokenPipeError, ConnectionResetError):
                return

    def _fill(self, deadline: float) -> bool:
        """Reads more bytes; False at EOF. Raises TimeoutError after the deadline."""
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no complete response in time")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no complete response in time") from None
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _read_exact(self, n: int, deadline: float) -> bytes:
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise AssertionError(f"connection closed with {len(self.buf)} of {n} body bytes")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _read_line(self, deadline: float) -> bytes:
        while b"\r\n" not in self.buf:
            if not self._fill(deadline):
                raise AssertionError("connection closed inside a chunked body")
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def read_response(self, timeout: float = 10, head_request: bool = False) -> RawResponse:
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(deadline):
                raise AssertionError(f"connection closed before a complete response head: {self.buf!r}")
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        assert version.startswith("HTTP/1."), f"bad status line {lines[0]!r}"
        status_text, _, reason = rest.partition(" ")
        status = int(status_text)
        headers = []
        for line in lines[1:]:
            key, sep, value = line.partition(":")
            assert sep, f"bad header line {line!r}"
            headers.append((key.strip(), value.strip()))
        response = RawResponse(status, reason, headers, b"")
        if 100 <= status < 200 or status in (204, 304) or head_request:
            return response
        te = (response.header("Transfer-Encoding") or "").lower()
        length = response.header("Content-Length")
        if "chunked" in te:
            body = b""
            while True:
                size = int(self._read_line(deadline).split(b";")[0], 16)
                if size == 0:
                    while self._read_line(deadline):  # trailers up to the empty line
                        pass
                    break
                body += self._read_exact(size, deadline)
                self._read_line(deadline)
            response.body = body
        elif length is not None:
            response.body = self._read_exact(int(length), deadline)
        else:
            while self._fill(deadline):
                pass
            response.body, self.buf = self.buf, b""
        return response

    def wait_closed(self, timeout: float) -> bool:
        """True if the server closes the connection within timeout s (bytes read meanwhile are kept)."""
        deadline = time.monotonic() + timeout
        try:
            while self._fill(deadline):
                pass
            return True
        except TimeoutError:
            return False


def raw_request(method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"",
                content_length: bool = True) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    for key, value in (headers or {}).items():
        lines.append(f"{key}: {value}")
    if content_length and (body or method in ("POST", "PUT", "PATCH")):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# --- Redis stream inspection -------------------------------------------------------------------

COMMAND_STREAM = "chat:cmd"  # the prefix of the shard streams chat:cmd:{s<n>}
COMMAND_SHARDS = 64  # the default shard count
CONSUMER_GROUP = "workers"


def shard_stream(shard: int, prefix: str = COMMAND_STREAM) -> str:
    return f"{prefix}:{{s{shard}}}"


SHARD_STREAMS = [shard_stream(n) for n in range(COMMAND_SHARDS)]
FIRST_SHARD = SHARD_STREAMS[0]


def redis_client(settings: Settings):
    import redis

    return redis.Redis.from_url(settings.redis_url, decode_responses=True, socket_timeout=5)


def consumer_group(r, stream: str = FIRST_SHARD) -> dict | None:
    """XINFO GROUPS entry of the workers group on a shard stream (the first by default), or None."""
    import redis

    try:
        groups = r.xinfo_groups(stream)
    except redis.ResponseError:  # no such stream yet
        return None
    for group in groups:
        if group.get("name") == CONSUMER_GROUP:
            return group
    return None


def stream_id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def wait_until_consumed(r, last_id: str, timeout: float, stream: str = FIRST_SHARD) -> dict:
    """Waits until the workers group of a shard stream has read past last_id and has nothing pending."""

    def consumed():
        group = consumer_group(r, stream)
        if group is None or stream_id_key(group["last-delivered-id"]) < stream_id_key(last_id):
            return None
        pending = r.xpending(stream, CONSUMER_GROUP)["pending"]
        return group if pending == 0 else None

    return poll(consumed, timeout, interval=0.1, what=f"entries of {stream} up to {last_id} read and acknowledged")


def shard_heads(r, streams: list[str] = SHARD_STREAMS) -> dict[str, str]:
    """The last id generated in each existing shard stream."""
    import redis

    heads = {}
    for stream in streams:
        try:
            heads[stream] = r.xinfo_stream(stream)["last-generated-id"]
        except redis.ResponseError:  # no such stream yet
            pass
    return heads


def wait_until_all_consumed(r, timeout: float, streams: list[str] = SHARD_STREAMS) -> None:
    """Waits until every shard stream's entries, as of now, are read and acknowledged."""
    for stream, last_id in shard_heads(r, streams).items():
        wait_until_consumed(r, last_id, timeout, stream)


def pending_by_consumer(r, streams: list[str] = SHARD_STREAMS) -> dict[str, int]:
    """Unacknowledged entries per worker, over every shard stream."""
    import redis

    totals: dict[str, int] = {}
    pipe = r.pipeline(transaction=False)
    for stream in streams:
        pipe.xpending(stream, CONSUMER_GROUP)
    for summary in pipe.execute(raise_on_error=False):
        if isinstance(summary, redis.ResponseError):  # no stream or group yet
            continue
        for consumer in summary.get("consumers") or []:
            totals[consumer["name"]] = totals.get(consumer["name"], 0) + int(consumer["pending"])
    return totals


def consumers_of(r, streams: list[str] = SHARD_STREAMS) -> set[str]:
    """Every consumer that ever read a shard stream."""
    import redis

    names: set[str] = set()
    for stream in streams:
        try:
            names |= {c["name"] for c in r.xinfo_consumers(stream, CONSUMER_GROUP)}
        except redis.ResponseError:
            continue
    return names


# --- Socket.IO and raw Engine.IO clients ---------------------------------------------------------

USER_CHANNEL = "chat:user:{}"  # the gateway subscribes here for each user with a local socket
SOCKETIO_PATH = "/socket.io/"


def user_channel(user_id) -> str:
    return USER_CHANNEL.format(user_id)


def publish_to_user(settings: Settings, user_id, event: str, data) -> int:
    """What any other process does to reach a user: PUBLISH {"event", "data"} on chat:user:<id>.
    Returns the number of subscriber connections that received it (one per gateway)."""
    r = redis_client(settings)
    try:
        return r.publish(user_channel(user_id), json.dumps({"event": event, "data": data}))
    finally:
        r.close()


def numsub(settings: Settings, channel: str) -> int:
    """PUBSUB NUMSUB for one channel: how many Redis connections (gateways) subscribe to it."""
    r = redis_client(settings)
    try:
        return dict(r.pubsub_numsub(channel)).get(channel, 0)
    finally:
        r.close()


def connect(sio_session, gw, user):
    """A python-socketio session of `user` on gateway `gw` (the `sio_session` fixture's factory)."""
    return sio_session(gw.url).connect(token=user.token)


def subscribed(settings: Settings, user, gateways: int, timeout: float = 3) -> None:
    """Waits until `gateways` gateways subscribe the user's channel (their sockets are admitted)."""
    channel = user_channel(user.id)
    poll(lambda: numsub(settings, channel) == gateways, timeout, interval=0.05,
         what=f"{channel} subscribed by {gateways} gateway(s)")


@dataclass
class ReceivedEvent:
    name: str
    args: tuple
    at: float  # time.monotonic() when it arrived
    index: int


def sio_transports() -> list[str]:
    """The transports of SioSession: the websocket alone, or with E2E_SIO_TRANSPORTS=default
    python-socketio's defaults (long-polling, then the upgrade to websocket; issue 15)."""
    choice = os.environ.get("E2E_SIO_TRANSPORTS", "websocket")
    return ["polling", "websocket"] if choice == "default" else choice.split(",")


class SioSession:
    """A stock python-socketio client (websocket transport only unless E2E_SIO_TRANSPORTS says
    otherwise, no automatic reconnection, so a drop is visible) that records everything it
    receives: events, connect_error, disconnect."""

    def __init__(self, url: str, namespace: str = "/", **client_options):
        import socketio

        self.url = url
        self.namespace = namespace
        self.client = socketio.Client(reconnection=False, handle_sigint=False, **client_options)
        self._cond = threading.Condition()
        self.events: list[ReceivedEvent] = []
        on = self.client.on
        on("connect", lambda: self._record("connect", ()), namespace=namespace)
        on("connect_error", lambda data=None: self._record("connect_error", (data,)), namespace=namespace)
        on("disconnect", lambda reason=None: self._record("disconnect", (reason,)), namespace=namespace)
        on("*", lambda event, *args: self._record(event, args), namespace=namespace)

    def _record(self, name: str, args: tuple) -> None:
        with self._cond:
            self.events.append(ReceivedEvent(name, args, time.monotonic(), len(self.events)))
            self._cond.notify_all()

    def connect(self, token: str | None = None, auth: dict | None = None,
                headers: dict[str, str] | None = None, wait_timeout: float = 5) -> "SioSession":
        """Connects with auth={"token": token} (or the given auth / headers); raises
        socketio.exceptions.ConnectionError when the server refuses."""
        import socketio

        if auth is None and token is not None:
            auth = {"token": token}
        mark = self.mark()
        try:
            self.client.connect(self.url, headers=dict(headers or {}), auth=auth, transports=sio_transports(),
                                namespaces=[self.namespace], wait_timeout=wait_timeout)
        except socketio.exceptions.ConnectionError as error:
            refusals = [e.args for e in self.events[mark:] if e.name == "connect_error"]
            raise socketio.exceptions.ConnectionError(f"{error}; connect_error received: {refusals!r}") from error
        return self

    @property
    def connected(self) -> bool:
        return self.client.connected

    @property
    def sid(self) -> str | None:
        return self.client.get_sid(self.namespace)

    def call(self, event: str, data=None, timeout: float = 5):
        """Emits with an ack request and returns the ack's argument (one argument) or tuple."""
        return self.client.call(event, data, namespace=self.namespace, timeout=timeout)

    def emit(self, event: str, data=None) -> None:
        self.client.emit(event, data, namespace=self.namespace)

    def find(self, name: str, since: int = 0, match=None) -> ReceivedEvent | None:
        with self._cond:
            for ev in self.events[since:]:
                if ev.name == name and (match is None or match(*ev.args)):
                    return ev
        return None

    def wait_for(self, name: str, timeout: float, since: int = 0, match=None) -> ReceivedEvent:
        """The first event `name` at index >= since (and satisfying match(*args)); fails after timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = self.find(name, since, match)
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [(e.name, e.args) for e in self.events[since:]][-10:]
                    raise AssertionError(f"no {name!r} event within {timeout}s on {self.url}; "
                                         f"received meanwhile: {seen!r}")
                self._cond.wait(remaining)

    def mark(self) -> int:
        """Index to pass as `since` to see only events that arrive from now on."""
        with self._cond:
            return len(self.events)

    def close(self) -> None:
        try:
            if self.client.connected:
                self.client.disconnect()
            else:
                self.client.eio.disconnect(abort=True)
        except Exception:  # teardown only: the server may already be gone
            pass


def connect_error_code(session: SioSession, timeout: float = 5, **connect_args) -> tuple[str, dict]:
    """Connects expecting a refusal; returns (data.code, the whole CONNECT_ERROR payload)."""
    import socketio

    try:
        session.connect(**connect_args)
    except socketio.exceptions.ConnectionError:
        pass
    else:
        raise AssertionError(f"the connection was accepted, a CONNECT_ERROR was expected ({connect_args!r})")
    payload = session.wait_for("connect_error", timeout).args[0]
    assert isinstance(payload, dict), (
        f"CONNECT_ERROR payload should be {{'message', 'data': {{'code'}}}}, got {payload!r} "
        "(a plain string means the WebSocket handshake itself was refused)")
    assert isinstance(payload.get("message"), str) and payload["message"], f"no message: {payload!r}"
    data = payload.get("data")
    assert isinstance(data, dict) and isinstance(data.get("code"), str), f"no data.code: {payload!r}"
    return data["code"], payload


@dataclass
class Frame:
    """One WebSocket frame as received: kind is text, binary, ping, pong, close or eof."""

    kind: str
    data: bytes | str = b""
    close_code: int | None = None
    at: float = 0.0


class ConnectionClosed(AssertionError):
    def __init__(self, frame: Frame, seen: list[str]):
        super().__init__(f"connection closed ({frame.kind}, code {frame.close_code}) "
                         f"after text frames {seen[-10:]!r}")
        self.frame = frame


class RawEngineIO:
    """Engine.IO v4 / Socket.IO v5 spoken by hand over websocket-client, for what python-socketio
    hides: the open packet, pings, malformed packets, binary frames, close codes. By default it
    sends no Origin header (a non-browser client) and answers every server ping `2` with `3`."""

    def __init__(self, port: int, query: str = "EIO=4&transport=websocket", origin: str | None = None,
                 headers: list[str] | None = None, timeout: float = 10, **ws_options):
        """ws_options go to websocket.create_connection (e.g. sockopt=[(SOL_SOCKET, SO_RCVBUF, n)])."""
        import websocket

        options = {"origin": origin} if origin is not None else {"suppress_origin": True}
        options.update(ws_options)
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{port}{SOCKETIO_PATH}?{query}",
                                              timeout=timeout, header=headers or [], **options)
        self.texts: list[str] = []  # every text frame received, in order
        self.pings = 0
        self.closed: Frame | None = None

    @staticmethod
    def refused(port: int, query: str = "EIO=4&transport=websocket", origin: str | None = None,
                headers: list[str] | None = None):
        """Attempts the upgrade, expecting a refusal; returns websocket's WebSocketBadStatusException
        (status_code, resp_body). Fails if the upgrade succeeds."""
        import websocket

        try:
            conn = RawEngineIO(port, query, origin, headers)
        except websocket.WebSocketBadStatusException as error:
            return error
        except (websocket.WebSocketException, OSError) as error:
            raise AssertionError(f"the upgrade ({query}, origin {origin!r}) was refused without an HTTP "
                                 f"status (connection dropped?): {error!r}") from None
        conn.close()
        raise AssertionError(f"the WebSocket upgrade ({query}, origin {origin!r}) was accepted; "
                             "a refusal was expected")

    def frame(self, timeout: float) -> Frame:
        """The next frame (control frames included); raises TimeoutError if none in time."""
        import websocket
        from websocket import ABNF

        if self.closed is not None:
            return self.closed
        self.ws.settimeout(max(timeout, 0.001))
        try:
            opcode, frame = self.ws.recv_data_frame(control_frame=True)
        except websocket.WebSocketTimeoutException:
            raise TimeoutError(f"no frame within {timeout}s") from None
        except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError) as error:
            if isinstance(error, socket.timeout):
                raise TimeoutError(f"no frame within {timeout}s") from None
            self.closed = Frame("eof", at=time.monotonic())
            return self.closed
        now = time.monotonic()
        if opcode == ABNF.OPCODE_TEXT:
            text = frame.data.decode("utf-8") if isinstance(frame.data, bytes) else frame.data
            self.texts.append(text)
            return Frame("text", text, at=now)
        if opcode == ABNF.OPCODE_BINARY:
            return Frame("binary", frame.data, at=now)
        if opcode == ABNF.OPCODE_CLOSE:
            code = int.from_bytes(frame.data[:2], "big") if len(frame.data) >= 2 else None
            self.closed = Frame("close", frame.data[2:], code, now)
            return self.closed
        return Frame("ping" if opcode == ABNF.OPCODE_PING else "pong", frame.data, at=now)

    def text(self, timeout: float = 5, answer_pings: bool = True) -> str:
        """The next text frame that is not an Engine.IO ping (answered with `3` unless told not to)."""
        deadline = time.monotonic() + timeout
        while True:
            fr = self.frame(deadline - time.monotonic())
            if fr.kind in ("close", "eof"):
                raise ConnectionClosed(fr, self.texts)
            if fr.kind != "text":
                continue
            if fr.data == "2":
                self.pings += 1
                if answer_pings:
                    self.send("3")
                    continue
            return fr.data

    def wait_closed(self, timeout: float, answer_pings: bool = True) -> Frame | None:
        """Reads until the server closes (returns the close or eof frame) or timeout (None)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.text(deadline - time.monotonic(), answer_pings)
            except ConnectionClosed as closed:
                return closed.frame
            except TimeoutError:
                return None

    def open_packet(self, timeout: float = 5) -> dict:
        first = self.text(timeout)
        assert first.startswith("0"), f"the first frame should be the Engine.IO open packet 0{{...}}: {first!r}"
        return json.loads(first[1:])

    def send(self, text: str) -> None:
        self.ws.send(text)

    def send_binary(self, data: bytes) -> None:
        self.ws.send_binary(data)

    def sio_connect(self, auth: dict | None = None, namespace: str = "/", timeout: float = 5) -> str:
        """Reads the open packet if not yet read, sends CONNECT; returns the server's answer, the
        first CONNECT or CONNECT_ERROR packet (`40{"sid":...}` / `44/nsp,{...}`) whatever its namespace."""
        if not self.texts:
            self.open_packet(timeout)
        prefix = "" if namespace == "/" else namespace + ","
        self.send("40" + prefix + (json.dumps(auth) if auth is not None else ""))
        while True:
            reply = self.text(timeout)
            if reply.startswith("40") or reply.startswith("44"):
                return reply

    def emit(self, event: str, *args, ack_id: int | None = None) -> None:
        self.send("42" + ("" if ack_id is None else str(ack_id)) + json.dumps([event, *args]))

    def event(self, timeout: float = 5) -> tuple[str, list]:
        """The next Socket.IO EVENT on `/`: (name, arguments)."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.text(deadline - time.monotonic())
            if text.startswith("42"):
                body = json.loads(text[2:])
                return body[0], body[1:]

    def ack(self, ack_id: int, timeout: float = 5) -> list:
        """Waits for the ACK `43<ack_id>[...]` and returns its arguments."""
        deadline = time.monotonic() + timeout
        prefix = f"43{ack_id}"
        while True:
            text = self.text(deadline - time.monotonic())
            if text.startswith(prefix) and text[len(prefix):].startswith("["):
                return json.loads(text[len(prefix):])

    def close(self) -> None:
        try:
            self.ws.close(timeout=1)
        except Exception:  # teardown only
            pass


# --- messages (issue 4): clusters, the message API, message shapes --------------------------------

import re as _re  # noqa: E402  (kept with the section that uses it)

# Shard leases of workers in these tests last this long (the production default is longer), so a
# killed worker's shards move quickly.
SHARD_LEASE_TTL_MS = 2000
ISO_MS = _re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
# Every message object (REST, events, acks) carries at least these fields.
MESSAGE_KEYS = frozenset({"id", "conversationId", "seq", "senderId", "receiverId", "content", "type",
                          "attachmentUrl", "clientMsgId", "isRead", "createdAt", "updatedAt"})
PERSON_KEYS = ("id", "username", "email")  # seed 000: history's sender / receiver objects
SECRET_KEY_PARTS = ("password", "hash", "secret", "token")


def worker_env(extra: dict[str, str | None] | None = None) -> dict[str, str | None]:
    env: dict[str, str | None] = {"SHARD_LEASE_TTL_MS": str(SHARD_LEASE_TTL_MS)}
    env.update(extra or {})
    return env


@dataclass
class Cluster:
    """Gateways and workers started together against the test Postgres/Redis."""

    gateways: list[ChatProcess]
    workers: list[ChatProcess]

    @property
    def gw1(self) -> ChatProcess:
        return self.gateways[0]

    @property
    def gw2(self) -> ChatProcess:
        return self.gateways[-1]

    def all(self) -> list[ChatProcess]:
        return [*self.gateways, *self.workers]

    def check_alive(self) -> None:
        for cp in self.all():
            if not cp.stopped:
                assert cp.alive(), f"{cp.name} on port {cp.port} died (exit {cp.proc.returncode}):\n{cp.log_tail()}"


def start_cluster(procs: Processes, gateways: int = 2, workers: int = 2,
                  gateway_env: dict[str, str | None] | None = None,
                  worker_extra_env: dict[str, str | None] | None = None) -> Cluster:
    """Starts the workers first (they run the migrations too), then the gateways."""
    ws = [procs.worker(worker_env(worker_extra_env)) for _ in range(workers)]
    gs = [procs.gateway(gateway_env) for _ in range(gateways)]
    return Cluster(gs, ws)


def check_person(obj, user: "User", what: str, caller: "User | None" = None) -> None:
    """Seed 000's {id, username} object of a user; `email` only when that user is the caller (a
    user's email is shown to that user only); nothing secret beside it."""
    assert isinstance(obj, dict), f"{what} should be an object: {obj!r}"
    for key, want in (("id", user.id), ("username", user.username)):
        assert obj.get(key) == want, f"{what}.{key} should be {want!r}: {obj!r}"
    if caller is not None and caller.id == user.id:
        assert obj.get("email") == user.email, f"{what}.email should be the caller's own {user.email!r}: {obj!r}"
    else:
        assert "email" not in obj, f"{what} shows another user's email: {obj!r}"
    leaked = [k for k in obj if any(part in k.lower() for part in SECRET_KEY_PARTS)]
    assert not leaked, f"{what} leaks {leaked}: {obj!r}"


def check_message(msg, **expected) -> dict:
    """Asserts the message JSON shape (MESSAGE_KEYS, types, ISO-8601 ms times) and the given field
    values (keyword names are the JSON names, e.g. senderId=..., isRead=False); returns msg."""
    assert isinstance(msg, dict), f"a message object was expected: {msg!r}"
    missing = MESSAGE_KEYS - msg.keys()
    assert not missing, f"message lacks {sorted(missing)}: {msg!r}"
    # A room's message (issue 13) has no receiver: `receiverId` null and `roomId` its conversation.
    in_room = "roomId" in msg
    if in_room:
        assert msg["receiverId"] is None and msg["roomId"] == msg["conversationId"], f"a room message: {msg!r}"
    for key in ("id", "conversationId", "seq", "senderId") + (() if in_room else ("receiverId",)):
        assert isinstance(msg[key], int) and not isinstance(msg[key], bool) and msg[key] > 0, (
            f"{key} should be a positive integer: {msg!r}")
    assert isinstance(msg["content"], str), msg
    assert msg["type"] in ("text", "image", "file", "emoji", "voice"), msg
    assert msg["attachmentUrl"] is None or isinstance(msg["attachmentUrl"], str), msg
    assert isinstance(msg["clientMsgId"], str) and msg["clientMsgId"], f"clientMsgId should be set: {msg!r}"
    assert isinstance(msg["isRead"], bool), msg
    for key in ("createdAt", "updatedAt"):
        assert isinstance(msg[key], str) and ISO_MS.match(msg[key]), (
            f"{key} should be ISO 8601 UTC with milliseconds (2024-01-15T10:30:00.000Z): {msg!r}")
    for key, want in expected.items():
        assert msg.get(key) == want, f"{key} should be {want!r}, got {msg.get(key)!r} in {msg!r}"
    return msg


def ack_message(ack, **expected) -> dict:
    """The stored message of a successful sendMessage ack."""
    assert not (isinstance(ack, dict) and "error" in ack), f"the ack carries an error: {ack!r}"
    return check_message(ack, **expected)


def ack_error(ack) -> tuple[str, str]:
    """(code, message) of an error ack `[{"error": {"code", "message"}}]`."""
    assert isinstance(ack, dict) and isinstance(ack.get("error"), dict), f"an error ack was expected: {ack!r}"
    code, message = ack["error"].get("code"), ack["error"].get("message")
    assert isinstance(code, str) and code, f"error ack without code: {ack!r}"
    assert isinstance(message, str) and message, f"error ack without message: {ack!r}"
    return code, message


def since_param(since: dict) -> str:
    """{conversationId: seq} -> "c:s,c:s" for GET /api/sync?since=."""
    return ",".join(f"{c}:{s}" for c, s in since.items())


class Messages:
    """The message REST API of one gateway, as one user."""

    def __init__(self, base_url: str, user: "User"):
        self.api = Api(base_url)
        self.user = user

    def send(self, receiver_id, content, client_msg_id: str | None = None, **extra) -> requests.Response:
        body = {"receiverId": receiver_id, "content": content, **extra}
        if client_msg_id is not None:
            body["clientMsgId"] = client_msg_id
        return self.api.post("/api/messages", body, self.user.token)

    def send_ok(self, receiver_id, content, client_msg_id: str | None = None, **extra) -> dict:
        resp = self.send(receiver_id, content, client_msg_id, **extra)
        assert resp.status_code == 201, f"POST /api/messages: expected 201, got {resp.status_code} {resp.text}"
        return check_message(resp.json(), senderId=self.user.id, receiverId=receiver_id, content=content)

    def history_response(self, other_id, **params) -> requests.Response:
        return self.api.get(f"/api/messages/conversation/{other_id}", self.user.token, params=params or None)

    def history(self, other_id, **params) -> list[dict]:
        resp = self.history_response(other_id, **params)
        assert resp.status_code == 200, f"history: {resp.status_code} {resp.text}"
        body = resp.json()
        assert isinstance(body, list), f"history should be a JSON array (seed 000): {body!r}"
        return body

    def conversations(self) -> list[dict]:
        resp = self.api.get("/api/messages/conversations", self.user.token)
        assert resp.status_code == 200, f"conversations: {resp.status_code} {resp.text}"
        body = resp.json()
        assert isinstance(body, list), f"conversations should be a JSON array (seed 000): {body!r}"
        return body

    def conversation_with(self, other_id) -> dict | None:
        found = [c for c in self.conversations() if isinstance(c.get("partner"), dict)
                 and c["partner"].get("id") == other_id]
        assert len(found) <= 1, f"two conversations with user {other_id}: {found!r}"
        return found[0] if found else None

    def unread(self) -> int:
        resp = self.api.get("/api/messages/unread-count", self.user.token)
        assert resp.status_code == 200, f"unread-count: {resp.status_code} {resp.text}"
        body = resp.json()
        assert isinstance(body, dict) and isinstance(body.get("unreadCount"), int), f"{{unreadCount: n}}: {body!r}"
        return body["unreadCount"]

    def mark_as_read(self, body) -> requests.Response:
        return self.api.post("/api/messages/mark-as-read", body, self.user.token)

    def mark_as_read_ok(self, body) -> dict:
        resp = self.mark_as_read(body)
        assert resp.status_code == 200, f"mark-as-read {body!r}: {resp.status_code} {resp.text}"
        answer = resp.json()
        assert answer.get("message") == "Messages marked as read", f"seed 000 answer expected: {answer!r}"
        return answer

    def sync_response(self, since: dict | None = None, **params) -> requests.Response:
        if since:
            params["since"] = since_param(since)
        return self.api.get("/api/sync", self.user.token, params=params or None)

    def sync(self, since: dict | None = None, **params) -> dict:
        resp = self.sync_response(since, **params)
        assert resp.status_code == 200, f"sync: {resp.status_code} {resp.text}"
        return check_sync_body(resp.json())

    def sync_all(self, max_rounds: int = 1000) -> dict[int, dict]:
        """Follows hasMore until every conversation is complete: {conversationId: {"messages": [...],
        "unreadCount", "lastSeq", "lastReadSeq"}} with every message after seq 0."""
        result: dict[int, dict] = {}
        since: dict[int, int] = {}
        for _ in range(max_rounds):
            body = self.sync(since)
            more = False
            for conv in body["conversations"]:
                cid = conv["conversationId"]
                entry = result.setdefault(cid, {"messages": []})
                entry.update(unreadCount=conv["unreadCount"], lastSeq=conv["lastSeq"],
                             lastReadSeq=conv["lastReadSeq"])
                entry["messages"].extend(conv["messages"])
                if conv["messages"]:
                    since[cid] = conv["messages"][-1]["seq"]
                else:
                    since.setdefault(cid, conv["lastSeq"])
                more = more or conv["hasMore"]
            if not more:
                return result
        raise AssertionError(f"sync still hasMore after {max_rounds} rounds")


def check_sync_body(body) -> dict:
    """Shape of GET /api/sync and of the socket sync ack."""
    assert isinstance(body, dict), f"sync body should be an object: {body!r}"
    assert isinstance(body.get("conversations"), list), f"sync body lacks conversations: {body!r}"
    assert isinstance(body.get("totalUnread"), int), f"sync body lacks totalUnread: {body!r}"
    for conv in body["conversations"]:
        for key in ("conversationId", "lastSeq", "unreadCount", "lastReadSeq"):
            assert isinstance(conv.get(key), int), f"sync conversation lacks {key}: {conv!r}"
        assert isinstance(conv.get("messages"), list), f"sync conversation lacks messages: {conv!r}"
        assert isinstance(conv.get("hasMore"), bool), f"sync conversation lacks hasMore: {conv!r}"
        seqs = [m.get("seq") for m in conv["messages"]]
        assert seqs == sorted(seqs), f"sync messages should be oldest first: {seqs}"
        for m in conv["messages"]:
            check_message(m, conversationId=conv["conversationId"])
    return body


def psql_rows(settings: Settings, sql: str) -> list[list[str]]:
    """Rows of a query as lists of strings (psql unaligned output split on '|'; keep '|' out of values)."""
    return [line.split("|") for line in psql(settings, sql).splitlines() if line]


def stored_messages(settings: Settings, sender_ids) -> tuple[list[list[str]], dict]:
    """Every stored message of these senders: the raw rows, and (sender, clientMsgId) -> list of
    (id, conversationId, seq, content) (more than one entry would be a duplicate)."""
    id_list = ",".join(str(int(i)) for i in sender_ids)
    rows = psql_rows(settings, "SELECT id, conversation_id, seq, sender_id, client_msg_id, content "
                               f"FROM messages WHERE sender_id IN ({id_list})")
    by_key: dict[tuple[int, str], list[tuple[int, int, int, str]]] = collections.defaultdict(list)
    for mid, conv, seq, sender, cmid, content in rows:
        by_key[(int(sender), cmid)].append((int(mid), int(conv), int(seq), content))
    return rows, by_key


def assert_acks_match_storage(acked: dict, by_key: dict, contents: dict) -> None:
    """Every acknowledged message is stored exactly once, with the id/conversation/seq of its ack
    and the content that was sent."""
    duplicates = {k: v for k, v in by_key.items() if len(v) != 1}
    assert not duplicates, f"{len(duplicates)} clientMsgIds stored more than once, e.g. {list(duplicates.items())[:3]}"
    missing = [k for k in acked if k not in by_key]
    assert not missing, f"{len(missing)} acknowledged messages are not in Postgres, e.g. {missing[:5]}"
    wrong = [(k, acked[k], by_key[k][0]) for k in acked
             if by_key[k][0][:3] != acked[k] or by_key[k][0][3] != contents[k]]
    assert not wrong, f"{len(wrong)} rows differ from their ack, e.g. {wrong[:3]}"


# --- presence and rate limits (issue 5) ---


def presence_env(ttl_ms: int = 2000, heartbeat_ms: int = 500, sweep_ms: int = 500) -> dict[str, str | None]:
    """Gateway settings for fast presence tests: a dead gateway's users go offline within
    ttl_ms + sweep_ms (the documented bound)."""
    return {"PRESENCE_TTL_MS": str(ttl_ms), "PRESENCE_HEARTBEAT_MS": str(heartbeat_ms),
            "PRESENCE_SWEEP_MS": str(sweep_ms)}


def default_limits_env(extra: dict[str, str | None] | None = None) -> dict[str, str | None]:
    """Overrides that pop the suite's high limits (and any proxy trust), so a process runs with the
    production defaults: API 100/1m, login 10/15m per account and 50/15m per IP, messages 5/10s,
    50 events/s per socket (burst 100, closed after 200 refusals in 10 s)."""
    env: dict[str, str | None] = {name: None for name in (
        "RATE_LIMIT_API", "RATE_LIMIT_API_ON_REDIS_ERROR", "RATE_LIMIT_LOGIN_ACCOUNT", "RATE_LIMIT_LOGIN_IP",
        "RATE_LIMIT_LOGIN_ON_REDIS_ERROR", "RATE_LIMIT_MESSAGES", "RATE_LIMIT_MESSAGES_ON_REDIS_ERROR",
        "TRUSTED_PROXIES", "SOCKET_EVENT_RATE", "SOCKET_EVENT_BURST", "SOCKET_EVENT_FLOOD_CLOSE")}
    env.update(extra or {})
    return env


def make_contacts(base_url: str, sender: User, receiver: User, content: str = "hello, contact") -> dict:
    """Makes two users contacts (they share a conversation): sender sends receiver one message over
    REST. Returns the stored message."""
    return Messages(base_url, sender).send_ok(receiver.id, content)


def iso_ms(text) -> int:
    """Epoch milliseconds of an ISO-8601 UTC timestamp with milliseconds (2024-01-15T10:30:00.000Z)."""
    import calendar
    import datetime

    assert isinstance(text, str) and ISO_MS.match(text), (
        f"expected ISO 8601 UTC with milliseconds (2024-01-15T10:30:00.000Z), got {text!r}")
    dt = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    return calendar.timegm(dt.timetuple()) * 1000 + dt.microsecond // 1000


def last_seen_ms(settings: Settings, user_id) -> float | None:
    """users.last_seen_at in epoch milliseconds (with the microseconds Postgres keeps), or None."""
    out = psql(settings, f"SELECT extract(epoch FROM last_seen_at) * 1000 FROM users WHERE id = {int(user_id)}")
    return float(out.strip()) if out.strip() else None


def check_public_user(obj, user: User | None = None, what: str = "user") -> dict:
    """The directory's User object {id, username, displayName, isOnline, lastSeen}: no email, nothing
    secret; id/username those of `user` when given. Returns obj."""
    assert isinstance(obj, dict), f"{what} should be an object: {obj!r}"
    missing = [k for k in ("id", "username", "displayName", "isOnline", "lastSeen") if k not in obj]
    assert not missing, f"{what} lacks {missing}: {obj!r}"
    leaked = [k for k in obj if "email" in k.lower() or any(part in k.lower() for part in SECRET_KEY_PARTS)]
    assert not leaked, f"{what} must not carry {leaked} (the user directory must not leak addresses): {obj!r}"
    assert isinstance(obj["id"], int) and not isinstance(obj["id"], bool), f"{what}.id: {obj!r}"
    assert isinstance(obj["username"], str) and isinstance(obj["displayName"], str), f"{what}: {obj!r}"
    # Presence is for contacts only: null (both fields) for a user who shares no conversation.
    assert obj["isOnline"] is None or isinstance(obj["isOnline"], bool), f"{what}.isOnline should be a boolean or null: {obj!r}"
    if obj["isOnline"] is None:
        assert obj["lastSeen"] is None, f"{what}: presence hidden (isOnline null) but lastSeen shown: {obj!r}"
    if obj["lastSeen"] is not None:
        iso_ms(obj["lastSeen"])
    if user is not None:
        assert obj["id"] == user.id and obj["username"] == user.username, (
            f"{what} should be {user.username} (id {user.id}): {obj!r}")
    return obj


def _structured_items(header: str) -> dict[str, dict[str, str]]:
    """A Structured Field list of parameterised strings ('"api";r=5;t=3, "x";...') as
    {name: {param: value}}."""
    items: dict[str, dict[str, str]] = {}
    for member in header.split(","):
        parts = [p.strip() for p in member.split(";")]
        name = parts[0]
        assert len(name) >= 2 and name[0] == name[-1] == '"', f"policy name should be a quoted string: {header!r}"
        params = {}
        for part in parts[1:]:
            key, sep, value = part.partition("=")
            assert sep, f"parameter without a value in {header!r}"
            params[key.strip()] = value.strip()
        items[name[1:-1]] = params
    return items


def rate_limit_headers(resp, policy: str = "api", quota: int = 100, window_s: int = 60) -> tuple[int, int]:
    """Asserts `RateLimit-Policy: "api";q=100;w=60` and `RateLimit: "api";r=<n>;t=<n>` (IETF draft,
    structured form) on a response; returns (remaining, seconds until a slot frees)."""
    what = f"{resp.request.method} {resp.request.path_url} ({resp.status_code})"
    policy_header, limit_header = resp.headers.get("RateLimit-Policy"), resp.headers.get("RateLimit")
    assert policy_header and limit_header, (
        f"{what} lacks RateLimit-Policy / RateLimit headers: {dict(resp.headers)!r}")
    policies = _structured_items(policy_header)
    assert policies.get(policy) == {"q": str(quota), "w": str(window_s)}, (
        f'{what}: RateLimit-Policy should be "{policy}";q={quota};w={window_s}, got {policy_header!r}')
    params = _structured_items(limit_header).get(policy)
    assert params is not None and params.get("r", "").isdigit() and params.get("t", "").isdigit(), (
        f'{what}: RateLimit should be "{policy}";r=<remaining>;t=<seconds>, got {limit_header!r}')
    remaining, reset = int(params["r"]), int(params["t"])
    assert remaining <= quota and reset <= window_s, f"{what}: RateLimit out of range: {limit_header!r}"
    return remaining, reset


def check_rate_limited(error, limit: str, max_retry_ms: int) -> int:
    """The refusal object {"code": "rate_limited", "limit", "retryAfterMs", "message"} (the value of
    "error" in a body, ack or event); returns retryAfterMs (an integer in 1..max_retry_ms)."""
    assert isinstance(error, dict), f"a rate_limited error object was expected: {error!r}"
    assert error.get("code") == "rate_limited", f"code should be rate_limited: {error!r}"
    assert error.get("limit") == limit, f"limit should be {limit!r}: {error!r}"
    ms = error.get("retryAfterMs")
    assert isinstance(ms, int) and not isinstance(ms, bool) and 0 < ms <= max_retry_ms, (
        f"retryAfterMs should be an integer in 1..{max_retry_ms}: {error!r}")
    assert isinstance(error.get("message"), str) and error["message"], f"no message: {error!r}"
    return ms


def check_rate_limited_response(resp, limit: str, max_retry_ms: int) -> int:
    """A 429 with Retry-After (whole seconds >= 1, agreeing with retryAfterMs) and the rate_limited
    body; returns retryAfterMs."""
    assert resp.status_code == 429, f"expected 429 rate_limited ({limit}), got {resp.status_code}: {resp.text}"
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f"429 body is not JSON: {resp.text!r}") from None
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), f"not an error body: {body!r}"
    ms = check_rate_limited(body["error"], limit, max_retry_ms)
    retry_after = resp.headers.get("Retry-After")
    assert retry_after is not None and retry_after.strip().isdigit() and int(retry_after) >= 1, (
        f"a 429 needs Retry-After in whole seconds >= 1: {retry_after!r}")
    assert abs(int(retry_after) - ms / 1000) <= 1, f"Retry-After {retry_after} disagrees with retryAfterMs {ms}"
    return ms


def random_client_ip() -> str:
    """An address for X-Forwarded-For that no other test (or earlier run) uses: its own budget."""
    import random

    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
