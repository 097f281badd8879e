"""Static checks of the deployment files: deploy/ (Dockerfile, haproxy, nginx, systemd, Kubernetes)
and docker-compose.yml. No Docker, no cluster and no running servers: the load balancer configs
are checked by the real programs (`haproxy -c`, `nginx -t`, from Debian's haproxy and nginx
packages), the systemd units by `systemd-analyze verify` (package systemd), and everything else
by parsing it. These tests use none of conftest.py's server fixtures.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import math
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
        # The admin port answers from the start (/ready says why while the process waits).
        admin = env["ADMIN_PORT"]
        assert admin in test, f"{name}: healthcheck must check the admin port {admin}: {test}"
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


# The Compose Specification's JSON schema (compose-spec.json, Apache-2.0), as vendored - with its
# sha256 - by the check-jsonschema wheel pinned in Tests/e2e/requirements.txt (0.39.0, a 2026
# schema with `$schema` draft 2020-12). Installing it adds a CLI and nothing that runs.
COMPOSE_SPEC_FILE = "check_jsonschema/builtin_schemas/vendor/compose-spec.json"
COMPOSE_SPEC_SHA256_FILE = "check_jsonschema/builtin_schemas/vendor/sha256/compose-spec.sha256"


def _compose_spec_schema() -> dict:
    from importlib import metadata

    try:
        distribution = metadata.distribution("check-jsonschema")
    except metadata.PackageNotFoundError:
        pytest.fail("check-jsonschema missing: pip install -r Tests/e2e/requirements.txt", pytrace=False)
    schema = Path(distribution.locate_file(COMPOSE_SPEC_FILE)).read_bytes()
    expected = Path(distribution.locate_file(COMPOSE_SPEC_SHA256_FILE)).read_text().strip()
    assert hashlib.sha256(schema).hexdigest() == expected, "the vendored compose-spec.json does not match its sha256"
    return json.loads(schema)


def _compose_interpolate(node, env: dict):
    """Compose's variable interpolation over every string: ${VAR}, ${VAR:-default},
    ${VAR-default}, ${VAR:?error}, ${VAR?error}, $VAR and $$."""
    pattern = re.compile(r"\$(?:(\$)|\{(\w+)(?:(:?[-?])((?:[^{}]|\$\{[^}]*\})*))?\}|(\w+))")

    def substitute(match: re.Match) -> str:
        if match[1]:
            return "$"
        name, operator, argument = match[2] or match[5], match[3], match[4] or ""
        value = env.get(name)
        if operator in (":-", ":?") and value == "":
            value = None
        if value is not None:
            return value
        if operator in (":?", "?"):
            raise AssertionError(f"${{{name}}} is required: {argument}")
        if operator in (":-", "-"):
            return pattern.sub(substitute, argument)
        return ""

    if isinstance(node, str):
        return pattern.sub(substitute, node)
    if isinstance(node, dict):
        return {key: _compose_interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [_compose_interpolate(value, env) for value in node]
    return node


def test_compose_file_matches_the_compose_spec_schema(compose):
    """docker-compose.yml against the compose-spec JSON schema, as written (anchors and merge keys
    resolved, the way Compose reads YAML) and after interpolation with only the required
    JWT_SECRET set, every other variable at its default."""
    import jsonschema

    schema = _compose_spec_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    interpolated = _compose_interpolate(compose, {"JWT_SECRET": "x" * 48})
    assert "${" not in json.dumps(interpolated), "a variable left uninterpolated"
    for label, document in (("as written", compose), ("interpolated", interpolated)):
        errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
        assert not errors, f"docker-compose.yml ({label}):\n" + "\n".join(
            f"  {'.'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}" for e in errors)


def test_compose_spec_schema_catches_mistakes(compose):
    """The schema is strict enough to be worth running: a misspelt key and a wrong type fail."""
    import copy

    import jsonschema

    schema = _compose_spec_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    broken = copy.deepcopy(compose)
    broken["services"]["redis"]["helthcheck"] = broken["services"]["redis"].pop("healthcheck")
    broken["services"]["haproxy"]["ports"] = "8080:8080"  # a list, not a string
    paths = {tuple(e.absolute_path) for e in validator.iter_errors(broken)}
    assert {("services", "redis"), ("services", "haproxy", "ports")} <= paths, paths
    assert all(p[:2] in {("services", "redis"), ("services", "haproxy")} for p in paths), paths


# ----------------------------------------------------------------------------------------------
# Kubernetes
#
# deploy/k8s is applied with `kubectl apply -k` (kustomization.yaml). kubectl is not a Debian
# package, so _kustomize_build below re-renders the kustomization with exactly the semantics the
# manifests rely on (resources, configMapGenerator + name references, images); where kubectl is
# installed, test_k8s_kustomize_render_matches_kubectl compares the two renderings.

KUSTOMIZATION = K8S / "kustomization.yaml"
KUBERNETES_VERSIONS = ("1.33.0", "1.37.0")  # strict schemas shipped by kubernetes-validate 1.37.0
IMAGE_NAME = "swift-chat"
# Postgres defaults: max_connections, superuser_reserved_connections (reserved_connections is 0).
POSTGRES_MAX_CONNECTIONS = 100
POSTGRES_SUPERUSER_RESERVED = 3
# DATABASE_POOL_SIZE when unset (`Gateway --help`, `MessageWorker --help`), and the connections a
# process opens besides its pool (the gateway's admission pool of size 1, GatewayServices).
PROGRAM_POOL_DEFAULT = {"Gateway": 8, "MessageWorker": 4}
PROGRAM_EXTRA_CONNECTIONS = {"Gateway": 1, "MessageWorker": 0}
# The gateway's body limit (HTTP_MAX_BODY_BYTES) and Engine.IO packet limit, when unset.
HTTP_MAX_BODY_BYTES_DEFAULT = 1_048_576
SOCKETIO_MAX_PAYLOAD_BYTES_DEFAULT = 1_000_000
MONITORING_NAMESPACE = "monitoring"
# Prometheus job names: deploy/prometheus/alerts.yml selects on them.
SCRAPE_JOBS = {"chat-gateway": GATEWAY_ADMIN_PORT, "chat-worker": WORKER_ADMIN_PORT}
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")


def _manifest_files() -> list[Path]:
    files = sorted(K8S.glob("*.yaml")) + sorted(K8S.glob("*.yml"))
    return [path for path in files if path.name not in ("kustomization.yaml", "kustomization.yml")]


def _load_manifest(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _kustomization() -> dict:
    return yaml.safe_load(KUSTOMIZATION.read_text())


def _kustomize_env_file(path: Path) -> dict[str, str]:
    """kustomize's `envs` format (api/kv): leading whitespace trimmed, blank and '#' lines skipped,
    NAME=value split at the first '=', the value taken literally. A line without '=' would read
    the variable from the environment of whoever runs kustomize: not allowed here."""
    data: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        assert "=" in line, f"{path.name}:{number}: NAME=value expected: {line!r}"
        name, value = line.split("=", 1)
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name), f"{path.name}:{number}: {name!r}"
        # Literal values: quotes or a trailing comment would become part of the value.
        assert not re.search(r"""^["']|\s#""", value), f"{path.name}:{number}: literal values only: {value!r}"
        assert value == value.strip(), f"{path.name}:{number}: spaces around {name}'s value"
        assert name not in data, f"{path.name}:{number}: {name} twice"
        data[name] = value
    return data


def _kustomize_hash(data: dict[str, str]) -> str:
    """kustomize's ConfigMap name suffix (api/hasher): sha256 of the JSON of kind, name and data,
    first 10 hex digits with 0,1,3,a,e replaced. (kustomize looks up "metadata/name" as a single
    key, so the name it hashes is empty: reproduced here.)"""
    encoded = json.dumps({"data": data, "kind": "ConfigMap", "name": ""}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(encoded.encode()).hexdigest()[:10].translate(str.maketrans("013ae", "ghkmt"))


def _pod_specs(obj: dict) -> list[dict]:
    """The pod specs kustomize's name-reference and image transformers reach in `obj`."""
    if obj["kind"] == "Pod":
        return [obj["spec"]]
    if obj["kind"] == "CronJob":
        return [obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]]
    if obj["kind"] in WORKLOAD_KINDS:
        return [obj["spec"]["template"]["spec"]]
    return []


def _config_map_refs(obj: dict) -> list[dict]:
    """Every object in `obj` that names a ConfigMap (wherever it is), as the dict holding `name`."""
    found = []

    def walk(node, key=None):
        if isinstance(node, dict):
            if key in ("configMapRef", "configMapKeyRef", "configMap") and "name" in node:
                found.append(node)
            for child_key, child in node.items():
                walk(child, child_key)
        elif isinstance(node, list):
            for child in node:
                walk(child, key)

    walk(obj)
    return found


def _rewritable_config_map_refs(obj: dict) -> list[dict]:
    """The ConfigMap references kustomize's default nameReference configuration rewrites: envFrom
    configMapRef, env valueFrom configMapKeyRef and configMap/projected volumes of a pod spec."""
    refs = []
    for pod in _pod_specs(obj):
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            refs += [s["configMapRef"] for s in container.get("envFrom", []) if "configMapRef" in s]
            refs += [e["valueFrom"]["configMapKeyRef"] for e in container.get("env", [])
                     if "configMapKeyRef" in e.get("valueFrom", {})]
        for volume in pod.get("volumes", []):
            if "configMap" in volume:
                refs.append(volume["configMap"])
            refs += [s["configMap"] for s in volume.get("projected", {}).get("sources", []) if "configMap" in s]
    return refs


def _split_image(image: str) -> tuple[str, str | None, str | None]:
    """'name[:tag][@digest]' -> (name, tag, digest); a registry port is not a tag."""
    name, _, digest = image.partition("@")
    tag = None
    if ":" in name.rsplit("/", 1)[-1]:
        name, tag = name.rsplit(":", 1)
    return name, tag, digest or None


def _kustomize_build() -> list[dict]:
    """What `kubectl kustomize deploy/k8s` outputs, for the features kustomization.yaml uses
    (anything else in it fails here, so this stays a faithful rendering)."""
    kustomization = _kustomization()
    supported = {"apiVersion", "kind", "resources", "configMapGenerator", "images"}
    assert set(kustomization) <= supported, f"kustomization features this test cannot render: {set(kustomization) - supported}"
    objects = [doc for name in kustomization["resources"] for doc in _load_manifest(K8S / name)]
    renames = {}
    generated = []
    for generator in kustomization.get("configMapGenerator", []):
        assert set(generator) <= {"name", "envs", "literals", "options"}, generator
        assert generator.get("behavior", "create") == "create"
        options = generator.get("options", {})
        assert not options.get("disableNameSuffixHash"), "the hash suffix is what rolls the pods"
        data = {}
        for env_file in generator.get("envs", []):
            data.update(_kustomize_env_file(K8S / env_file))
        for literal in generator.get("literals", []):
            key, value = literal.split("=", 1)
            data[key] = value
        name = f"{generator['name']}-{_kustomize_hash(data)}"
        renames[generator["name"]] = name
        metadata = {"name": name}
        if options.get("labels"):
            metadata["labels"] = dict(options["labels"])
        if options.get("annotations"):
            metadata["annotations"] = dict(options["annotations"])
        generated.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data})
    for obj in objects:
        for ref in _rewritable_config_map_refs(obj):
            ref["name"] = renames.get(ref["name"], ref["name"])
    for override in kustomization.get("images", []):
        for obj in objects:
            for pod in _pod_specs(obj):
                for container in pod.get("containers", []) + pod.get("initContainers", []):
                    name, tag, digest = _split_image(container["image"])
                    if name != override["name"]:
                        continue
                    name = override.get("newName", name)
                    tag, digest = override.get("newTag", tag), override.get("digest", digest)
                    container["image"] = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    return generated + objects


@pytest.fixture(scope="module")
def k8s() -> dict:
    """Every object in deploy/k8s (examples included), the generated ConfigMap under its base name
    chat-config, keyed by (kind, name)."""
    objects: dict[tuple[str, str], dict] = {}
    files = _manifest_files()
    assert files, "no manifests in deploy/k8s"
    for path in files:
        for doc in _load_manifest(path):
            for field in ("apiVersion", "kind", "metadata"):
                assert field in doc, f"{path.name}: {field} missing"
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in objects, f"{path.name}: duplicate {key}"
            assert "namespace" not in doc["metadata"], f"{path.name}: manifests are namespace-agnostic"
            objects[key] = doc
    for generator in _kustomization().get("configMapGenerator", []):
        key = ("ConfigMap", generator["name"])
        assert key not in objects, f"{key} is generated by kustomization.yaml: no static copy"
        data = {}
        for env_file in generator.get("envs", []):
            data.update(_kustomize_env_file(K8S / env_file))
        objects[key] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]}, "data": data}
    return objects


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    return _kustomize_build()


def _pod_spec(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]


def _container(obj: dict) -> dict:
    containers = _pod_spec(obj)["containers"]
    assert len(containers) == 1
    return containers[0]


def _env_list(container: dict) -> dict:
    return {item["name"]: item for item in container.get("env", [])}


def _pod_labels(obj: dict) -> dict:
    return obj["spec"]["template"]["metadata"]["labels"]


def _selects(selector: dict, labels: dict) -> bool:
    """A label selector (matchLabels only, as the manifests use) against a label set."""
    assert set(selector) <= {"matchLabels"}, f"matchLabels only: {selector}"
    return selector.get("matchLabels", {}).items() <= labels.items()


def _effective_env(obj: dict, container: dict, config: dict) -> dict:
    """The container's environment as the pod sees it: ConfigMap (envFrom) overridden by env."""
    env = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(config)
    env.update({item["name"]: item["value"] for item in container.get("env", []) if "value" in item})
    return env


EXPECTED_K8S = {
    ("ConfigMap", "chat-config"): "v1",
    ("Secret", "chat-secrets"): "v1",
    ("Deployment", "chat-gateway"): "apps/v1",
    ("Service", "chat-gateway"): "v1",
    ("Service", "chat-gateway-admin"): "v1",
    ("PodDisruptionBudget", "chat-gateway"): "policy/v1",
    ("Deployment", "chat-worker"): "apps/v1",
    ("Service", "chat-worker"): "v1",
    ("PodDisruptionBudget", "chat-worker"): "policy/v1",
    ("HorizontalPodAutoscaler", "chat-gateway"): "autoscaling/v2",
    ("Job", "chat-migrate"): "batch/v1",
    ("NetworkPolicy", "chat-gateway"): "networking.k8s.io/v1",
    ("NetworkPolicy", "chat-worker"): "networking.k8s.io/v1",
    ("NetworkPolicy", "chat-migrate"): "networking.k8s.io/v1",
    ("NetworkPolicy", "chat-egress"): "networking.k8s.io/v1",
    ("ServiceMonitor", "chat-gateway"): "monitoring.coreos.com/v1",
    ("ServiceMonitor", "chat-worker"): "monitoring.coreos.com/v1",
    ("Ingress", "chat"): "networking.k8s.io/v1",
    ("Ingress", "chat-socketio"): "networking.k8s.io/v1",
}


def test_k8s_kinds(k8s):
    for key, api_version in EXPECTED_K8S.items():
        assert key in k8s, f"missing {key}"
        assert k8s[key]["apiVersion"] == api_version, key


def test_k8s_workloads_consistent(k8s, compose):
    workloads = [obj for obj in k8s.values() if obj["kind"] in ("Deployment", "Job")]
    images = {c["image"] for obj in workloads for c in _pod_spec(obj)["containers"]}
    # One image everywhere, the one compose builds; its version comes from kustomization.yaml.
    compose_image = _split_image(_default(compose["services"]["gateway-1"]["image"]))[0]
    assert images == {IMAGE_NAME} == {compose_image}, f"one image everywhere, named without a version: {images}"
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
    # The HPA owns the replica count: a value here would be re-applied on every release.
    assert "replicas" not in deployment["spec"], "chat-gateway: no replicas beside its HPA"
    assert k8s[("HorizontalPodAutoscaler", "chat-gateway")]["spec"]["minReplicas"] == 2
    pod, container = _pod_spec(deployment), _container(deployment)
    assert container.get("args", container.get("command")) == ["Gateway"]
    assert [p["containerPort"] for p in container["ports"]] == [GATEWAY_PORT, GATEWAY_ADMIN_PORT]
    assert int(_env_list(container)["ADMIN_PORT"]["value"]) == GATEWAY_ADMIN_PORT
    # Probes on the admin port, which listens before migrations and Postgres (issue 18, item 5).
    ready = container["readinessProbe"]["httpGet"]
    assert (ready["path"], ready["port"]) == ("/ready", GATEWAY_ADMIN_PORT)
    alive = container["livenessProbe"]["httpGet"]
    assert (alive["path"], alive["port"]) == ("/health", GATEWAY_ADMIN_PORT)
    startup = container["startupProbe"]["httpGet"]
    assert (startup["path"], startup["port"]) == ("/health", GATEWAY_ADMIN_PORT)
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

    # The workers' admin Service (headless: one target per pod).
    service = k8s[("Service", "chat-worker")]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert [p["port"] for p in service["spec"]["ports"]] == [WORKER_ADMIN_PORT]


def test_k8s_disruption_budgets_and_topology_spread(k8s):
    for name in ("chat-gateway", "chat-worker"):
        deployment = k8s[("Deployment", name)]
        labels = _pod_labels(deployment)
        pdb = k8s[("PodDisruptionBudget", name)]["spec"]
        assert _selects(pdb["selector"], labels), f"{name}: the PodDisruptionBudget selects no pod"
        assert pdb.get("minAvailable", 0) >= 1 or pdb.get("maxUnavailable") == 1, f"{name}: {pdb}"
        constraints = {c["topologyKey"]: c for c in _pod_spec(deployment)["topologySpreadConstraints"]}
        assert set(constraints) == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}, name
        for key, constraint in constraints.items():
            # A preference: a zone or node short of capacity never leaves a pod pending.
            assert constraint["whenUnsatisfiable"] == "ScheduleAnyway", (name, key)
            assert constraint["maxSkew"] == 1, (name, key)
            assert _selects(constraint["labelSelector"], labels), (name, key)
    # A budget that can never be met would block every node drain.
    assert k8s[("Deployment", "chat-worker")]["spec"]["replicas"] > k8s[("PodDisruptionBudget", "chat-worker")]["spec"]["minAvailable"]
    assert k8s[("HorizontalPodAutoscaler", "chat-gateway")]["spec"]["minReplicas"] > k8s[("PodDisruptionBudget", "chat-gateway")]["spec"]["minAvailable"]


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
    # The variables the pod specs set themselves (DATABASE_POOL_SIZE, ...; HEALTH_PORT is the
    # image's, documented as `HEALTH_PORT=...`).
    pod_names = {name for obj in k8s.values() for pod in _pod_specs(obj)
                 for container in pod["containers"] for name in _env_list(container)}
    undocumented = sorted(name for name in pod_names if f"`{name}`" not in docs and f"{name}=" not in docs)
    assert not undocumented, f"not in docs/OPERATIONS.md: {undocumented}"


# --- kustomize ------------------------------------------------------------------------------------


def test_k8s_kustomization_lists_every_manifest():
    kustomization = _kustomization()
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    resources = kustomization["resources"]
    assert len(resources) == len(set(resources)), f"listed twice: {resources}"
    expected = sorted(p.name for p in _manifest_files() if ".example." not in p.name)
    assert sorted(resources) == expected, "kustomization.yaml must list every manifest except the *.example.yaml files"
    # Namespace-agnostic, and no transformer that would change selectors or names under the pods.
    for field in ("namespace", "namePrefix", "nameSuffix", "commonLabels", "labels"):
        assert field not in kustomization, field
    # Every generator source exists; a static ConfigMap of the same name would collide with it.
    for generator in kustomization["configMapGenerator"]:
        for source in generator.get("envs", []):
            assert (K8S / source).is_file(), source


def test_k8s_kustomize_config_map_rolls_the_pods(rendered):
    """The generated ConfigMap carries a hash of its data in its name, and every reference to it
    is one kustomize rewrites: so an edited setting changes every pod template that uses it."""
    generator = next(g for g in _kustomization()["configMapGenerator"] if g["name"] == "chat-config")
    config_maps = [obj for obj in rendered if obj["kind"] == "ConfigMap"]
    assert len(config_maps) == 1
    config_map = config_maps[0]
    data = config_map["data"]
    assert config_map["metadata"]["name"] == f"chat-config-{_kustomize_hash(data)}"
    changed = dict(data, LOG_LEVEL="debug" if data.get("LOG_LEVEL") != "debug" else "info")
    assert _kustomize_hash(changed) != _kustomize_hash(data), "a changed setting must rename the ConfigMap"
    assert generator["options"]["labels"]["app.kubernetes.io/component"] == "config", \
        "README.md's first step selects the ConfigMap by this label"
    users = set()
    for obj in rendered:
        for ref in _config_map_refs(obj):
            assert ref["name"] != "chat-config", (
                f"{obj['kind']}/{obj['metadata']['name']}: a reference kustomize does not rewrite still names chat-config")
            assert ref["name"] == config_map["metadata"]["name"], ref
        if _config_map_refs(obj):
            users.add((obj["kind"], obj["metadata"]["name"]))
    assert users == {("Deployment", "chat-gateway"), ("Deployment", "chat-worker"), ("Job", "chat-migrate")}, users


def test_k8s_kustomize_images_by_version(rendered):
    overrides = _kustomization()["images"]
    assert [o["name"] for o in overrides] == [IMAGE_NAME]
    tag = str(overrides[0].get("newTag", ""))
    assert re.fullmatch(r"\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?", tag) or "digest" in overrides[0], \
        f"a release version (or a digest), not {tag!r}"
    images = {c["image"] for obj in rendered for pod in _pod_specs(obj) for c in pod["containers"] + pod.get("initContainers", [])}
    assert len(images) == 1, images
    name, rendered_tag, digest = _split_image(images.pop())
    assert name.rsplit("/", 1)[-1] == IMAGE_NAME and (rendered_tag == tag or digest)
    assert rendered_tag != "latest"
    assert "images:" in (K8S / "README.md").read_text() and "kustomize edit set image" in (K8S / "README.md").read_text()


def test_k8s_kustomize_render_matches_kubectl(rendered):
    """Where kubectl is installed, its built-in kustomize must render what _kustomize_build does
    (up to the ConfigMap's hash suffix, whose algorithm is kustomize's business)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed (no Debian package): the Python rendering stands alone")
    result = _run([kubectl, "kustomize", str(K8S)], ROOT)
    assert result.returncode == 0, result.stderr
    theirs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    def normalized(objects):
        text = json.dumps(sorted(objects, key=lambda o: (o["kind"], o["metadata"]["name"])), sort_keys=True)
        return json.loads(re.sub(r"\bchat-config-[a-z0-9]{10}\b", "chat-config-HASH", text))

    assert normalized(theirs) == normalized(rendered)


# --- schemas ------------------------------------------------------------------------------------

# ServiceMonitor is a CRD kubernetes-validate has no schema for: this is a closed subset of the
# Prometheus Operator's CRD schema (monitoring.coreos.com_servicemonitors.yaml, operator 0.87):
# the fields below have the CRD's types and patterns, and any other field fails, so a misspelt
# one cannot pass silently. Add a field here (from the CRD) before using it in the manifest.
_PROMETHEUS_DURATION = r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
SERVICE_MONITOR_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 253},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "spec": {
            "type": "object",
            "required": ["endpoints", "selector"],
            "additionalProperties": False,
            "properties": {
                "jobLabel": {"type": "string"},
                "targetLabels": {"type": "array", "items": {"type": "string"}},
                "podTargetLabels": {"type": "array", "items": {"type": "string"}},
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"any": {"type": "boolean"}, "matchNames": {"type": "array", "items": {"type": "string"}}},
                },
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "matchExpressions": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["key", "operator"],
                                "additionalProperties": False,
                                "properties": {
                                    "key": {"type": "string"},
                                    "operator": {"type": "string"},
                                    "values": {"type": "array", "items": {"type": "string"}},
                                },
                            },
                        },
                    },
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "targetPort": {"type": ["integer", "string"]},
                            "path": {"type": "string"},
                            "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
                            "interval": {"type": "string", "pattern": _PROMETHEUS_DURATION},
                            "scrapeTimeout": {"type": "string", "pattern": _PROMETHEUS_DURATION},
                            "honorLabels": {"type": "boolean"},
                            "followRedirects": {"type": "boolean"},
                            "enableHttp2": {"type": "boolean"},
                            "filterRunning": {"type": "boolean"},
                        },
                    },
                },
            },
        },
    },
}


def _all_manifest_objects() -> list[tuple[str, dict]]:
    """Every object of every manifest (examples included) and the generated ConfigMap."""
    objects = [(path.name, doc) for path in _manifest_files() for doc in _load_manifest(path)]
    objects += [("kustomization.yaml", obj) for obj in _kustomize_build() if obj["kind"] == "ConfigMap"]
    return objects


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_k8s_manifests_validate_strictly(version):
    """kubernetes-validate's strict schemas (no unknown field anywhere) for every built-in kind;
    the ServiceMonitor CRD against SERVICE_MONITOR_SCHEMA (test_k8s_service_monitors)."""
    from kubernetes_validate import utils as kubernetes_validate

    assert version.rsplit(".", 1)[0] in {v.rsplit(".", 1)[0] for v in kubernetes_validate.all_versions()}, \
        f"kubernetes-validate ships no schemas for {version}"
    errors, crds = [], []
    for filename, obj in _all_manifest_objects():
        kind = f"{filename}: {obj['kind']}/{obj['metadata']['name']}"
        try:
            validated = kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            crds.append(obj["kind"])
            continue
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{kind}: {'.'.join(str(p) for p in error.path)}: {error.message}")
            continue
        assert validated == version.rsplit(".", 1)[0], (kind, validated)
    assert not errors, "\n".join(errors)
    assert set(crds) <= {"ServiceMonitor"}, f"no schema for {set(crds) - {'ServiceMonitor'}}"


def test_k8s_service_monitors(k8s):
    import jsonschema

    monitors = {name: obj for (kind, name), obj in k8s.items() if kind == "ServiceMonitor"}
    assert set(monitors) == set(SCRAPE_JOBS)
    services = [obj for (kind, _), obj in k8s.items() if kind == "Service"]
    for name, monitor in monitors.items():
        jsonschema.Draft202012Validator(SERVICE_MONITOR_SCHEMA).validate(monitor)
        spec = monitor["spec"]
        selected = [s for s in services if _selects(spec["selector"], s["metadata"].get("labels", {}))]
        # Exactly the admin Service: the public one has no /metrics.
        assert [s["spec"].get("clusterIP") for s in selected] == ["None"], f"{name}: selects {[s['metadata']['name'] for s in selected]}"
        service = selected[0]
        ports = {p["name"]: p["targetPort"] for p in service["spec"]["ports"]}
        for endpoint in spec["endpoints"]:
            assert ports[endpoint["port"]] == SCRAPE_JOBS[name], f"{name}: scrapes {ports[endpoint['port']]}"
            assert endpoint["path"] == "/metrics"
        # The job label alerts.yml selects on.
        assert service["metadata"]["labels"][spec["jobLabel"]] == name


# --- network ------------------------------------------------------------------------------------


def _policy_ports(rule: dict) -> set[tuple[str, int]]:
    return {(p.get("protocol", "TCP"), p["port"]) for p in rule.get("ports", [])}


def _from_monitoring_only(rule: dict) -> bool:
    peers = rule.get("from")
    return bool(peers) and all(
        set(peer) == {"namespaceSelector"}
        and peer["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": MONITORING_NAMESPACE}}
        for peer in peers)


def test_k8s_network_policies(k8s):
    policies = [obj for (kind, _), obj in k8s.items() if kind == "NetworkPolicy"]
    workloads = {name: _pod_labels(k8s[(kind, name)]) for kind, name in
                 (("Deployment", "chat-gateway"), ("Deployment", "chat-worker"), ("Job", "chat-migrate"))}

    def ingress_rules(pod: str) -> list[dict]:
        selecting = [p for p in policies if "Ingress" in p["spec"]["policyTypes"] and _selects(p["spec"]["podSelector"], workloads[pod])]
        assert selecting, f"{pod}: no ingress policy selects it (it would accept anything)"
        return [rule for p in selecting for rule in p["spec"].get("ingress", [])]

    # Gateways: 3000 from anywhere, 9095 from the monitoring namespace only, nothing else.
    rules = ingress_rules("chat-gateway")
    public = [r for r in rules if _policy_ports(r) == {("TCP", GATEWAY_PORT)}]
    assert public and all("from" not in r for r in public), rules
    admin = [r for r in rules if ("TCP", GATEWAY_ADMIN_PORT) in _policy_ports(r)]
    assert admin and all(_from_monitoring_only(r) and _policy_ports(r) == {("TCP", GATEWAY_ADMIN_PORT)} for r in admin), admin
    assert all(_policy_ports(r) for r in rules), "a rule without ports opens every port"
    assert {port for r in rules for _, port in _policy_ports(r)} == {GATEWAY_PORT, GATEWAY_ADMIN_PORT}
    # Workers: 9091 from monitoring only; the Job: nothing.
    rules = ingress_rules("chat-worker")
    assert rules and all(_from_monitoring_only(r) and _policy_ports(r) == {("TCP", WORKER_ADMIN_PORT)} for r in rules), rules
    assert ingress_rules("chat-migrate") == []
    # Egress of every chat pod: DNS, Postgres, Redis, and nothing else.
    for pod, labels in workloads.items():
        selecting = [p for p in policies if "Egress" in p["spec"]["policyTypes"] and _selects(p["spec"]["podSelector"], labels)]
        assert selecting, f"{pod}: no egress policy"
        egress = [rule for p in selecting for rule in p["spec"].get("egress", [])]
        assert all(_policy_ports(r) for r in egress), "an egress rule without ports opens every port"
        ports = set().union(*(_policy_ports(r) for r in egress))
        assert ports == {("UDP", 53), ("TCP", 53), ("TCP", 5432), ("TCP", 6379)}, (pod, ports)


def test_k8s_ingress_example_routes_only_the_public_port(k8s):
    config = k8s[("ConfigMap", "chat-config")]["data"]
    ingresses = {name: obj for (kind, name), obj in k8s.items() if kind == "Ingress"}
    assert ingresses and all(".example." in p.name for p in _manifest_files() if "kind: Ingress" in p.read_text())
    services = {name: obj for (kind, name), obj in k8s.items() if kind == "Service"}
    body_limit = int(config.get("HTTP_MAX_BODY_BYTES", HTTP_MAX_BODY_BYTES_DEFAULT))
    packet_limit = int(config.get("SOCKETIO_MAX_PAYLOAD_BYTES", SOCKETIO_MAX_PAYLOAD_BYTES_DEFAULT))
    paths = {}
    for name, ingress in ingresses.items():
        annotations = ingress["metadata"]["annotations"]
        for direction in ("read", "send"):
            assert annotations[f"nginx.ingress.kubernetes.io/proxy-{direction}-timeout"] == "3600", (name, direction)
        size = annotations["nginx.ingress.kubernetes.io/proxy-body-size"]
        match = re.fullmatch(r"(\d+)([kmg]?)", size.lower())
        assert match, size
        size_bytes = int(match[1]) * {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}[match[2]]
        assert size_bytes == body_limit >= packet_limit, f"{name}: body size {size_bytes} vs the gateway's {body_limit}"
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                service = services[backend["name"]]
                port = next(p for p in service["spec"]["ports"]
                            if p.get("name") == backend["port"].get("name") or p["port"] == backend["port"].get("number"))
                assert port["targetPort"] == GATEWAY_PORT, f"{name} routes {backend} to {port['targetPort']}"
                paths[path["path"]] = annotations
    assert set(paths) == {"/", "/socket.io/"}
    socketio = paths["/socket.io/"]
    assert socketio["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert socketio["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "off"


# --- Postgres connections -------------------------------------------------------------------------


def _max_surge(deployment: dict, replicas: int) -> int:
    surge = deployment["spec"].get("strategy", {}).get("rollingUpdate", {}).get("maxSurge", "25%")
    if isinstance(surge, str) and surge.endswith("%"):
        return math.ceil(replicas * int(surge[:-1]) / 100)
    return int(surge)


def test_k8s_postgres_connection_budget(k8s):
    """Σ connections over every process at its most (HPA maxReplicas gateways, worker replicas,
    one more of each while a rollout surges, the migration Job) within max_connections less the
    superuser reserve; the arithmetic is in deploy/k8s/README.md."""
    config = k8s[("ConfigMap", "chat-config")]["data"]
    hpas = {obj["spec"]["scaleTargetRef"]["name"]: obj["spec"] for (kind, _), obj in k8s.items() if kind == "HorizontalPodAutoscaler"}
    steady = peak = 0
    lines = []
    for (kind, name), obj in sorted(k8s.items()):
        if kind not in ("Deployment", "Job"):
            continue
        container = _container(obj)
        program = container.get("args", container.get("command"))[0]
        env = _effective_env(obj, container, config)
        per_pod = int(env.get("DATABASE_POOL_SIZE", PROGRAM_POOL_DEFAULT[program])) + PROGRAM_EXTRA_CONNECTIONS[program]
        if kind == "Job":
            pods, surge = int(obj["spec"].get("parallelism", 1)), 0
        else:
            pods = hpas[name]["maxReplicas"] if name in hpas else int(obj["spec"].get("replicas", 1))
            surge = _max_surge(obj, pods)
        steady += pods * per_pod
        peak += (pods + surge) * per_pod
        lines.append(f"{kind}/{name}: ({pods} + {surge} surge) x {per_pod}")
    available = POSTGRES_MAX_CONNECTIONS - POSTGRES_SUPERUSER_RESERVED
    assert peak <= available, f"{' + '.join(lines)} = {peak} > {available} Postgres connections"
    # deploy/k8s/README.md states the same totals.
    readme = (K8S / "README.md").read_text()
    assert f"= {steady}." in readme and f"= {peak} ≤ {available}" in readme, \
        f"README.md's budget must say {steady} (HPA maximum) and {peak} (rollout): {' + '.join(lines)}"


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
