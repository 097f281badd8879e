"""Static checks of the deployment files: deploy/ (Dockerfile, haproxy, nginx, systemd, Kubernetes)
and docker-compose.yml. No Docker, no cluster and no running servers: the load balancer configs
are checked by the real programs (`haproxy -c`, `nginx -t`, from Debian's haproxy and nginx
packages), the systemd units by `systemd-analyze verify` (package systemd), and everything else
by parsing it. These tests use none of conftest.py's server fixtures.
"""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SYSTEMD = DEPLOY / "systemd"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCS = ROOT / "docs" / "OPERATIONS.md"

GATEWAY_PORT = 3000
WORKER_ADMIN_PORT = 9091
GATEWAY_ADMIN_PORT = 9095
APP_SERVICES = ("gateway-1", "gateway-2", "worker-1", "worker-2")


def _tool(name: str, package: str) -> str:
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if Path(p).exists()), None
    )
    if path is None:
        pytest.fail(f"{name} not found: install the Debian package {package}", pytrace=False)
    return path


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60)


def _loopback_copy(text: str) -> str:
    """The load balancer configs name the compose services gateway-1/gateway-2; those names do
    not resolve here, so the copy under test points at loopback instead."""
    return re.sub(r"\bgateway-(\d+):3000\b", r"127.0.0.1:300\1", text)


# ----------------------------------------------------------------------------------------------
# Load balancers


def test_haproxy_config_is_valid(tmp_path):
    haproxy = _tool("haproxy", "haproxy")
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(_loopback_copy((DEPLOY / "haproxy.cfg").read_text()))
    result = _run([haproxy, "-c", "-f", str(cfg)], tmp_path)
    assert result.returncode == 0, f"haproxy -c failed:\n{result.stdout}\n{result.stderr}"


def test_haproxy_config_is_websocket_aware():
    text = (DEPLOY / "haproxy.cfg").read_text()
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    assert "mode http" in lines
    # Tunnel (upgraded WebSocket) idle timeout well above the Engine.IO ping interval (25 s).
    tunnel = next(line for line in lines if line.startswith("timeout tunnel"))
    assert _seconds(tunnel.split()[-1]) >= 60
    # Active readiness checks on /ready.
    assert "option httpchk" in lines
    assert any(line.startswith("http-check send") and "uri /ready" in line for line in lines)
    assert any(line.startswith("http-check expect status 200") for line in lines)
    # No stickiness needed for the websocket transport.
    assert not any(line.startswith(("cookie", "stick", "stick-table", "balance source")) for line in lines)
    servers = [line.split() for line in lines if line.startswith("server ")]
    assert {s[2] for s in servers} == {f"{name}:{GATEWAY_PORT}" for name in ("gateway-1", "gateway-2")}


def test_nginx_config_is_valid(tmp_path):
    nginx = _tool("nginx", "nginx")
    text = _loopback_copy((DEPLOY / "nginx.conf").read_text())
    # The pid file (opened by -t) must be writable by whoever runs the tests.
    text, count = re.subn(r"(?m)^pid\s+[^;]+;", f"pid {tmp_path / 'nginx.pid'};", text)
    assert count == 1
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    result = _run([nginx, "-t", "-p", f"{tmp_path}/", "-e", "stderr", "-c", str(conf)], tmp_path)
    assert result.returncode == 0, f"nginx -t failed:\n{result.stdout}\n{result.stderr}"


def test_nginx_config_is_websocket_aware():
    text = (DEPLOY / "nginx.conf").read_text()
    assert re.search(r"proxy_set_header\s+Upgrade\s+\$http_upgrade;", text)
    assert re.search(r"proxy_set_header\s+Connection\s+\$connection_upgrade;", text)
    assert re.search(r"proxy_http_version\s+1\.1;", text)
    read_timeout = re.search(r"proxy_read_timeout\s+(\w+);", text)
    assert read_timeout and _seconds(read_timeout.group(1)) >= 60
    servers = re.findall(r"(?m)^\s*server\s+([\w.-]+:\d+)", text)
    assert set(servers) == {f"gateway-1:{GATEWAY_PORT}", f"gateway-2:{GATEWAY_PORT}"}
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    assert "sticky" not in code and "ip_hash" not in code and "hash $" not in code


def _seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", value)
    assert match, value
    number, unit = int(match.group(1)), match.group(2) or "s"
    return number * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


# ----------------------------------------------------------------------------------------------
# Dockerfile


def test_dockerfile_one_image_two_programs_non_root_with_healthcheck():
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"(?m)^FROM\s+(\S+)(?:\s+AS\s+(\w+))?", text)
    assert len(stages) >= 2, "multi-stage build expected"
    assert re.search(r"(?m)^ARG SWIFT_IMAGE=swift:6[.\d]*-", text)
    assert re.search(r"(?m)^COPY --from=build .*\bGateway\b.*\bMessageWorker\b", text)
    user = re.findall(r"(?m)^USER\s+(\S+)", text)
    assert user and not user[-1].startswith(("root", "0:", "0\n")) and user[-1] != "0"
    healthcheck = re.search(r"(?m)^HEALTHCHECK\s.*", text.replace("\\\n", " "))
    assert healthcheck, "HEALTHCHECK missing"
    assert "chat-ready" in healthcheck.group(0) and "HEALTH_PORT" in healthcheck.group(0)
    assert re.search(r"(?m)^ENV HEALTH_PORT=3000\b", text)
    assert re.search(r'(?m)^CMD \["Gateway"\]', text)
    assert (DEPLOY / "chat-ready").exists()


# ----------------------------------------------------------------------------------------------
# docker-compose.yml


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _env(service: dict) -> dict:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return env


def _default(value: str) -> str:
    """'${NAME:-default}' -> 'default'; anything else unchanged."""
    match = re.fullmatch(r"\$\{\w+:-([^}]*)\}", value)
    return match.group(1) if match else value


def test_compose_services(compose):
    services = compose["services"]
    expected = {"postgres", "redis", "migrate", "haproxy", *APP_SERVICES}
    assert expected <= set(services), f"missing: {expected - set(services)}"


def test_compose_redis_appendonly(compose):
    command = compose["services"]["redis"]["command"]
    command = command if isinstance(command, list) else command.split()
    assert "--appendonly" in command and command[command.index("--appendonly") + 1] == "yes"
    assert "--appendfsync" in command and command[command.index("--appendfsync") + 1] == "everysec"


def test_compose_app_services_health_checks_and_commands(compose):
    services = compose["services"]
    images = set()
    for name in APP_SERVICES + ("migrate",):
        service = services[name]
        images.add(service["image"])
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (ROOT / service["build"].get("context", ".") / "deploy" / "Dockerfile").exists()
    assert len(images) == 1, f"one image for every program: {images}"
    for name in APP_SERVICES:
        service, env = services[name], _env(services[name])
        gateway = name.startswith("gateway")
        assert service["command"] == (["Gateway"] if gateway else ["MessageWorker"])
        port = env["PORT"] if gateway else env["ADMIN_PORT"]
        assert int(port) == (GATEWAY_PORT if gateway else WORKER_ADMIN_PORT)
        if gateway:
            # Metrics on an admin port of their own, never the public one.
            assert int(env["ADMIN_PORT"]) == GATEWAY_ADMIN_PORT
        test = service["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL")
        assert "/ready" in " ".join(test), f"{name}: healthcheck must use /ready: {test}"
        assert str(port) in test, f"{name}: healthcheck must check port {port}: {test}"
        assert _seconds(service["stop_grace_period"]) * 1000 > int(env.get("SHUTDOWN_GRACE_MS", 10000))
    assert services["migrate"]["command"] == ["MessageWorker", "--migrate-only"]
    assert services["migrate"].get("restart") == "no"
    ids = [_env(services[n]).get("GATEWAY_ID") or _env(services[n]).get("WORKER_ID") for n in APP_SERVICES]
    assert len(set(ids)) == len(ids) and None not in ids


def test_compose_depends_on_with_conditions(compose):
    services = compose["services"]
    allowed = {"service_healthy", "service_completed_successfully", "service_started"}
    for name, service in services.items():
        depends = service.get("depends_on")
        if depends is None:
            continue
        assert isinstance(depends, dict), f"{name}: depends_on must name conditions"
        for target, spec in depends.items():
            assert target in services, f"{name} depends on unknown {target}"
            assert spec.get("condition") in allowed, f"{name} -> {target}: {spec}"
    for name in APP_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("postgres", "redis"):
        assert "healthcheck" in services[name]


def test_compose_secrets_are_not_baked_in(compose):
    services = compose["services"]
    for name in ("gateway-1", "gateway-2"):
        secret = _env(services[name])["JWT_SECRET"]
        assert secret.startswith("${JWT_SECRET:?"), f"{name}: JWT_SECRET needs ${{JWT_SECRET:?...}}: {secret}"
    for name in ("worker-1", "worker-2", "migrate"):
        assert "JWT_SECRET" not in _env(services[name]), f"{name} does not need the JWT secret"
    for value in re.findall(r"(?m)^\s*JWT_SECRET:\s*(.*)$", COMPOSE_FILE.read_text()):
        assert value.strip("\"' ").startswith("${JWT_SECRET:?"), f"a literal JWT_SECRET in docker-compose.yml: {value}"


def test_compose_named_volumes(compose):
    volumes = compose.get("volumes") or {}
    services = compose["services"]
    for name, mount_point in (("postgres", "/var/lib/postgresql/data"), ("redis", "/data")):
        mounts = [m.split(":") for m in services[name]["volumes"]]
        named = [m for m in mounts if m[1] == mount_point]
        assert named, f"{name}: no volume on {mount_point}"
        assert named[0][0] in volumes, f"{name}: {named[0][0]} is not a named volume"


def test_compose_haproxy(compose):
    haproxy = compose["services"]["haproxy"]
    assert haproxy.get("ports"), "haproxy must publish a port"
    published = str(haproxy["ports"][0])
    assert published.endswith(":8080"), published
    mounts = [str(m).split(":") for m in haproxy["volumes"]]
    assert any(src == "./deploy/haproxy.cfg" and dst.endswith("haproxy.cfg") for src, dst, *_ in mounts)
    assert {"gateway-1", "gateway-2"} <= set(haproxy["depends_on"])
    haproxy_cfg = (DEPLOY / "haproxy.cfg").read_text()
    assert re.search(r"(?m)^\s*bind\s+:8080\b", haproxy_cfg)


# ----------------------------------------------------------------------------------------------
# Kubernetes


@pytest.fixture(scope="module")
def k8s() -> dict:
    objects: dict[tuple[str, str], dict] = {}
    files = sorted(K8S.glob("*.yaml")) + sorted(K8S.glob("*.yml"))
    assert files, "no manifests in deploy/k8s"
    for path in files:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is None:
                continue
            for field in ("apiVersion", "kind", "metadata"):
                assert field in doc, f"{path.name}: {field} missing"
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in objects, f"{path.name}: duplicate {key}"
            assert "namespace" not in doc["metadata"], f"{path.name}: manifests are namespace-agnostic"
            objects[key] = doc
    return objects


def _pod_spec(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]


def _container(obj: dict) -> dict:
    containers = _pod_spec(obj)["containers"]
    assert len(containers) == 1
    return containers[0]


def _env_list(container: dict) -> dict:
    return {item["name"]: item for item in container.get("env", [])}


EXPECTED_K8S = {
    ("ConfigMap", "chat-config"): "v1",
    ("Secret", "chat-secrets"): "v1",
    ("Deployment", "chat-gateway"): "apps/v1",
    ("Service", "chat-gateway"): "v1",
    ("Service", "chat-gateway-admin"): "v1",
    ("Deployment", "chat-worker"): "apps/v1",
    ("Service", "chat-worker"): "v1",
    ("HorizontalPodAutoscaler", "chat-gateway"): "autoscaling/v2",
    ("Job", "chat-migrate"): "batch/v1",
}


def test_k8s_kinds(k8s):
    for key, api_version in EXPECTED_K8S.items():
        assert key in k8s, f"missing {key}"
        assert k8s[key]["apiVersion"] == api_version, key


def test_k8s_workloads_consistent(k8s, compose):
    workloads = [obj for obj in k8s.values() if obj["kind"] in ("Deployment", "Job")]
    images = {c["image"] for obj in workloads for c in _pod_spec(obj)["containers"]}
    compose_image = _default(compose["services"]["gateway-1"]["image"])
    assert images == {compose_image}, f"one image everywhere (compose default {compose_image}): {images}"
    secret = k8s[("Secret", "chat-secrets")]["stringData"]
    config = k8s[("ConfigMap", "chat-config")]["data"]
    for obj in workloads:
        name = obj["metadata"]["name"]
        pod = _pod_spec(obj)
        if obj["kind"] == "Deployment":
            selector = obj["spec"]["selector"]["matchLabels"]
            labels = obj["spec"]["template"]["metadata"]["labels"]
            assert selector.items() <= labels.items(), f"{name}: selector does not match the pod labels"
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"].get("runAsUser", 10001) != 0, name
        for container in pod["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
            assert container["resources"]["requests"] and container["resources"]["limits"], name
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] == "chat-config", name
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == "chat-secrets" and ref["key"] in secret, (name, ref)
    for key, value in config.items():
        assert isinstance(value, str), f"ConfigMap values must be strings: {key}"


def test_k8s_gateway(k8s):
    deployment = k8s[("Deployment", "chat-gateway")]
    assert deployment["spec"]["replicas"] == 2
    pod, container = _pod_spec(deployment), _container(deployment)
    assert container.get("args", container.get("command")) == ["Gateway"]
    assert [p["containerPort"] for p in container["ports"]] == [GATEWAY_PORT, GATEWAY_ADMIN_PORT]
    assert int(_env_list(container)["ADMIN_PORT"]["value"]) == GATEWAY_ADMIN_PORT
    ready = container["readinessProbe"]["httpGet"]
    assert (ready["path"], ready["port"]) == ("/ready", GATEWAY_PORT)
    alive = container["livenessProbe"]["httpGet"]
    assert (alive["path"], alive["port"]) == ("/health", GATEWAY_PORT)
    pre_stop = container["lifecycle"]["preStop"]
    sleep = pre_stop["exec"]["command"] if "exec" in pre_stop else ["sleep", str(pre_stop["sleep"]["seconds"])]
    assert sleep[0] in ("sleep", "/bin/sleep", "/usr/bin/sleep") and 1 <= int(sleep[-1]) <= 15
    config = k8s[("ConfigMap", "chat-config")]["data"]
    grace_ms = int(_env_list(container).get("SHUTDOWN_GRACE_MS", {}).get("value", config.get("SHUTDOWN_GRACE_MS", 10000)))
    assert pod["terminationGracePeriodSeconds"] * 1000 > grace_ms + int(sleep[-1]) * 1000
    env = _env_list(container)
    assert env["GATEWAY_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["JWT_SECRET"]["valueFrom"]["secretKeyRef"]["key"] == "JWT_SECRET"
    assert "limits" in container["resources"] and "memory" in container["resources"]["limits"]

    service = k8s[("Service", "chat-gateway")]
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert [p["targetPort"] for p in service["spec"]["ports"]] == [GATEWAY_PORT]
    # The admin port (metrics) has its own headless Service, for scraping only.
    admin = k8s[("Service", "chat-gateway-admin")]
    assert admin["spec"]["clusterIP"] == "None"
    assert [p["targetPort"] for p in admin["spec"]["ports"]] == [GATEWAY_ADMIN_PORT]


def test_k8s_worker(k8s):
    deployment = k8s[("Deployment", "chat-worker")]
    pod, container = _pod_spec(deployment), _container(deployment)
    assert container.get("args", container.get("command")) == ["MessageWorker"]
    env = _env_list(container)
    assert int(env["ADMIN_PORT"]["value"]) == WORKER_ADMIN_PORT
    assert env["WORKER_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert "JWT_SECRET" not in env
    ready = container["readinessProbe"]["httpGet"]
    assert (ready["path"], ready["port"]) == ("/ready", WORKER_ADMIN_PORT)
    alive = container["livenessProbe"]["httpGet"]
    assert (alive["path"], alive["port"]) == ("/health", WORKER_ADMIN_PORT)
    assert pod["terminationGracePeriodSeconds"] * 1000 > 10000

    service = k8s[("Service", "chat-worker")]
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert [p["port"] for p in service["spec"]["ports"]] == [WORKER_ADMIN_PORT]


def test_k8s_secret_is_only_an_example(k8s):
    secret = k8s[("Secret", "chat-secrets")]
    assert "data" not in secret, "use stringData placeholders, not base64 data"
    values = secret["stringData"]
    assert {"JWT_SECRET", "DATABASE_URL", "REDIS_URL"} <= set(values)
    # A placeholder the gateway refuses (production requires at least 32 bytes), nothing that
    # looks like a real random secret, and every value marked as one to replace.
    assert len(values["JWT_SECRET"]) < 32
    for key, value in values.items():
        assert "REPLACE_ME" in value, f"{key} must be an obvious placeholder"
        assert not re.search(r"[A-Za-z0-9+/=_-]{24,}", value.replace("REPLACE_ME", "")), key
    assert "EXAMPLE" in (K8S / "secret.example.yaml").read_text()


def test_k8s_hpa_targets_gateway(k8s):
    hpa = k8s[("HorizontalPodAutoscaler", "chat-gateway")]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "chat-gateway"}
    assert hpa["minReplicas"] >= 2 and hpa["maxReplicas"] >= hpa["minReplicas"]
    assert any(m["type"] == "Resource" and m["resource"]["name"] == "cpu" for m in hpa["metrics"])
    # CPU utilisation needs CPU requests on the target.
    gateway = _container(k8s[("Deployment", "chat-gateway")])
    assert gateway["resources"]["requests"]["cpu"]


def test_k8s_migration_job(k8s):
    job = k8s[("Job", "chat-migrate")]
    container = _container(job)
    assert container.get("args", container.get("command")) == ["MessageWorker", "--migrate-only"]
    assert _pod_spec(job)["restartPolicy"] in ("Never", "OnFailure")
    assert "DATABASE_URL" in _env_list(container)


def test_k8s_and_env_examples_name_documented_variables(k8s):
    docs = DOCS.read_text()
    names = set(k8s[("ConfigMap", "chat-config")]["data"])
    for path in SYSTEMD.glob("*.env.example"):
        names |= set(_env_file(path))
    undocumented = sorted(name for name in names if f"`{name}`" not in docs)
    assert not undocumented, f"not in docs/OPERATIONS.md: {undocumented}"


# ----------------------------------------------------------------------------------------------
# systemd


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",), empty_lines_in_values=False)
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string(path.read_text())
    return parser


def _unit_values(path: Path, section: str, key: str) -> list[str]:
    """Every value of a repeatable key (configparser keeps only the last)."""
    values, current = [], None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
        elif current == section and "=" in line:
            name, value = (part.strip() for part in line.split("=", 1))
            if name == key:
                values.append(value)
    return values


def _env_file(path: Path) -> dict:
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            assert "=" in line and not line.startswith("export "), f"{path.name}: {line}"
            name, value = line.split("=", 1)
            assert re.fullmatch(r"[A-Z][A-Z0-9_]*", name), f"{path.name}: {name}"
            env[name] = value
    return env


@pytest.mark.parametrize(
    "unit, binary, id_var, instance_env",
    [
        ("chat-gateway@.service", "/usr/local/bin/Gateway", "GATEWAY_ID", "/etc/chat/gateway-%i.env"),
        ("chat-worker@.service", "/usr/local/bin/MessageWorker", "WORKER_ID", "/etc/chat/worker-%i.env"),
    ],
)
def test_systemd_unit(unit, binary, id_var, instance_env):
    path = SYSTEMD / unit
    parser = _unit(path)
    assert set(parser.sections()) == {"Unit", "Service", "Install"}
    service = parser["Service"]
    assert service["ExecStart"].split()[0] == binary
    assert service["KillSignal"] == "SIGTERM"
    assert service["LimitNOFILE"] == "1048576"
    assert service["TimeoutStopSec"] == "30"
    assert service["Restart"] == "on-failure"
    assert service["User"] == "chat"
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["PrivateTmp"] == "yes"
    env_files = [v.lstrip("-") for v in _unit_values(path, "Service", "EnvironmentFile")]
    assert env_files == ["/etc/chat/common.env", instance_env]
    environment = _unit_values(path, "Service", "Environment")
    assert any(v.startswith(f"{id_var}=") and "%i" in v for v in environment), environment
    assert parser["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_units_verify(tmp_path):
    analyze = _tool("systemd-analyze", "systemd")
    units = []
    for name in ("chat-gateway", "chat-worker"):
        text = (SYSTEMD / f"{name}@.service").read_text()
        # verify insists that ExecStart exists; the binaries are not installed here.
        text = re.sub(r"(?m)^ExecStart=\S+", "ExecStart=/bin/true", text)
        unit = tmp_path / f"{name}@1.service"
        unit.write_text(text)
        units.append(str(unit))
    result = _run([analyze, "verify", *units], tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and not re.search(r"(?i)unknown|invalid|failed|ignoring", output), output


def test_systemd_env_examples_hold_no_secrets():
    paths = sorted(SYSTEMD.glob("*.env.example"))
    assert {p.name for p in paths} >= {"common.env.example", "gateway-1.env.example", "worker-1.env.example"}
    common = _env_file(SYSTEMD / "common.env.example")
    for key in ("JWT_SECRET", "DATABASE_URL", "REDIS_URL"):
        assert "REPLACE_ME" in common[key], key
    assert len(common["JWT_SECRET"]) < 32, "a placeholder the gateway refuses"
    assert _env_file(SYSTEMD / "gateway-1.env.example")["PORT"].isdigit()
    assert _env_file(SYSTEMD / "worker-1.env.example")["ADMIN_PORT"].isdigit()


# --- descriptor arithmetic (issue 18) ------------------------------------------------------------

GATEWAY_RESERVE = 1000  # DescriptorBudget.reserve: the gateway's descriptors besides connections
DEFAULT_MAX_CONNECTIONS = 100_000


def _compose_services() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def _nofile(service: dict) -> tuple[int, int]:
    limits = service.get("ulimits", {}).get("nofile")
    assert limits is not None, "no ulimits.nofile: the engine default (often 1024) would apply"
    if isinstance(limits, int):
        return limits, limits
    return int(limits["soft"]), int(limits["hard"])


def test_descriptor_arithmetic_of_every_shipped_config():
    """haproxy needs about two descriptors per connection; a gateway one per connection plus its
    own; nginx two per worker connection. Every shipped config must give what it asks for (the
    haproxy image cannot raise its own limit: it would exit with "Cannot raise FD limit")."""
    services = _compose_services()
    maxconn = int(re.search(r"(?m)^\s*maxconn\s+(\d+)", (DEPLOY / "haproxy.cfg").read_text())[1])
    soft, hard = _nofile(services["haproxy"])
    assert min(soft, hard) >= 2 * maxconn + 1000, f"haproxy maxconn {maxconn} needs ~{2 * maxconn + 1000} descriptors, compose gives {soft}/{hard}"
    gateways = [name for name, service in services.items() if "Gateway" in str(service.get("command", ""))]
    assert gateways, "no gateway service found in docker-compose.yml"
    for name in gateways:
        environment = services[name].get("environment") or {}
        cap = int(environment.get("MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS))
        soft, hard = _nofile(services[name])
        assert min(soft, hard) >= cap + GATEWAY_RESERVE, f"{name}: MAX_CONNECTIONS {cap} needs {cap + GATEWAY_RESERVE} descriptors, compose gives {soft}/{hard}"
    nginx = (DEPLOY / "nginx.conf").read_text()
    rlimit = int(re.search(r"(?m)^\s*worker_rlimit_nofile\s+(\d+);", nginx)[1])
    connections = int(re.search(r"(?m)^\s*worker_connections\s+(\d+);", nginx)[1])
    assert rlimit >= 2 * connections, f"nginx: worker_connections {connections} proxied need {2 * connections} descriptors, worker_rlimit_nofile is {rlimit}"
    unit = (DEPLOY / "systemd" / "chat-gateway@.service").read_text()
    limit = int(re.search(r"(?m)^LimitNOFILE=(\d+)", unit)[1])
    assert limit >= DEFAULT_MAX_CONNECTIONS + GATEWAY_RESERVE, f"systemd LimitNOFILE={limit} below MAX_CONNECTIONS + reserve"
