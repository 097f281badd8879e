"""Monitoring (issue 18, item 7): the Prometheus alerting rules (deploy/prometheus/alerts.yml), their
unit tests (alerts_test.yml), the Grafana dashboard (deploy/grafana/chat.json), the runbooks they
link to (docs/OPERATIONS.md, "Runbooks"), and the point-in-time recovery drill (scripts/pitr-drill.sh).

The rules and the dashboard may only use metrics the processes export: a real gateway and worker
are started, both /metrics scraped, and every metric name (and every label a selector or a grouping
names) in every alert and panel expression is looked up in what they answer. Expressions are read
with a small PromQL tokenizer, not by grepping for names. promtool (Debian package prometheus) is
required: without it these tests fail, never skip.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
import yaml

from support import poll, unique, worker_env

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERTS_TEST = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "chat.json"
OPERATIONS = ROOT / "docs" / "OPERATIONS.md"
DRILL = ROOT / "scripts" / "pitr-drill.sh"

GATEWAY_JOB, WORKER_JOB = "chat-gateway", "chat-worker"
# Labels Prometheus attaches to every scraped series (the processes do not export them), and `le`,
# the bucket label of a histogram's _bucket series.
TARGET_LABELS = {"job", "instance"}
# Series Prometheus makes itself for every target, not exported by the processes.
SYNTHETIC_METRICS = {"up"}
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
SEVERITIES = {"critical", "warning", "info"}


# --- a small PromQL tokenizer ---------------------------------------------------------------------

TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])                                       # [5m], [1h:1m]
  | (?P<number>(?:0[xX][0-9a-fA-F]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(?:ms|[smhdwy])*)  # 0.99, 1e3, 1h, 1h30m
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=,(){}@])
    """,
    re.VERBOSE,
)
# Followed by a parenthesised list of label names.
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
# Never metric names.
KEYWORDS = GROUPING | {"offset", "bool", "and", "or", "unless", "atan2", "inf", "nan", "start", "end"}
# Aggregation operators: `sum by (x) (...)` puts the grouping between the name and its parenthesis.
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
                "bottomk", "topk", "quantile", "limitk", "limit_ratio"}


@dataclasses.dataclass
class Selector:
    metric: str
    matchers: list[tuple[str, str, str]]  # (label, operator, value)


@dataclasses.dataclass
class Parsed:
    selectors: list[Selector]
    grouping: set[str]  # label names in by / without / on / ignoring / group_left / group_right
    functions: set[str]


def tokenize(expr: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(expr):
        match = TOKEN.match(expr, pos)
        if match is None:
            raise ValueError(f"cannot tokenize {expr[pos:pos + 20]!r} in {expr!r}")
        if match.lastgroup != "ws":
            tokens.append((match.lastgroup, match.group()))
        pos = match.end()
    return tokens


def unquote(text: str) -> str:
    body = text[1:-1]
    return body if text[0] == "`" else re.sub(r"\\(.)", r"\1", body)


def parse_promql(expr: str) -> Parsed:
    """The metric selectors (name and label matchers), grouping labels and function names of `expr`."""
    tokens = tokenize(expr)
    parsed = Parsed([], set(), set())

    def peek(i):
        return tokens[i] if i < len(tokens) else ("end", "")

    def matchers(i):  # tokens[i] is '{'; returns (matchers, index after '}')
        found, i = [], i + 1
        while peek(i)[1] != "}":
            (kind, label), (_, op), (vkind, value) = peek(i), peek(i + 1), peek(i + 2)
            assert kind == "ident" and op in ("=", "!=", "=~", "!~") and vkind == "string", \
                f"bad label matcher at {label!r} {op!r} {value!r} in {expr!r}"
            found.append((label, op, unquote(value)))
            i += 3
            if peek(i)[1] == ",":
                i += 1
        return found, i + 1

    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        if kind == "ident" and text.lower() in GROUPING:
            i += 1
            if peek(i)[1] == "(":
                i += 1
                while peek(i)[1] != ")":
                    label_kind, label = peek(i)
                    assert label_kind == "ident", f"bad grouping list near {label!r} in {expr!r}"
                    parsed.grouping.add(label)
                    i += 2 if peek(i + 1)[1] == "," else 1
                i += 1
            continue
        if kind == "ident" and text.lower() in KEYWORDS:
            i += 1
            continue
        if kind == "ident" and (peek(i + 1)[1] == "(" or (text in AGGREGATIONS and peek(i + 1)[1] in GROUPING)):
            parsed.functions.add(text)
            i += 1
            continue
        if kind == "ident":
            selector = Selector(text, [])
            i += 1
            if peek(i)[1] == "{":
                selector.matchers, i = matchers(i)
            parsed.selectors.append(selector)
            continue
        if text == "{":  # {__name__="x", ...}
            found, i = matchers(i)
            names = [value for label, op, value in found if label == "__name__" and op == "="]
            assert names, f"a selector without a metric name in {expr!r}"
            parsed.selectors.append(Selector(names[0], [m for m in found if m[0] != "__name__"]))
            continue
        i += 1
    return parsed


def test_promql_tokenizer():
    parsed = parse_promql(
        'histogram_quantile(0.99, sum by (job, le) (rate(foo_seconds_bucket{a="x,y", b=~"y|z"}[5m])))'
        ' > 0.5 and on (job) sum without (shard) (bar_total offset 1h) / ignoring(c) group_left(d) baz'
        ' or vector(0) unless {__name__="qux", e!="1"} @ 1609746000 > bool 1e3')
    assert [s.metric for s in parsed.selectors] == ["foo_seconds_bucket", "bar_total", "baz", "qux"]
    assert parsed.selectors[0].matchers == [("a", "=", "x,y"), ("b", "=~", "y|z")]
    assert parsed.selectors[3].matchers == [("e", "!=", "1")]
    assert parsed.grouping == {"job", "le", "shard", "c", "d"}
    assert parsed.functions == {"histogram_quantile", "sum", "rate", "vector"}
    assert [s.metric for s in parse_promql("topk(5, x) + time() - max(y)").selectors] == ["x", "y"]


# --- what the processes export --------------------------------------------------------------------


@dataclasses.dataclass
class Exposition:
    """One scrape: family name -> type, and sample name -> label sets."""

    types: dict[str, str]
    samples: dict[str, list[dict[str, str]]]

    @staticmethod
    def parse(text: str) -> "Exposition":
        types, samples = {}, {}
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(" ", 3)
                types[name] = kind
            elif line and not line.startswith("#"):
                match = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})? \S+$", line)
                assert match, f"unparsable sample line {line!r}"
                labels = dict(re.findall(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
                samples.setdefault(match.group(1), []).append(labels)
        return Exposition(types, samples)

    def family(self, name: str) -> str | None:
        """The exported family a series name belongs to (`x_bucket` → histogram `x`), if any."""
        if name in self.types:
            return name
        for suffix in ("_bucket", "_sum", "_count"):
            base = name[: -len(suffix)]
            if name.endswith(suffix) and self.types.get(base) in ("histogram", "summary"):
                return base
        return None

    def label_sets(self, name: str) -> list[dict[str, str]]:
        return self.samples.get(name, [])


def scrape(url: str) -> Exposition:
    resp = requests.get(f"{url}/metrics", timeout=10)
    assert resp.status_code == 200, f"GET {url}/metrics: {resp.status_code}"
    return Exposition.parse(resp.text)


def jobs_of(selector: Selector) -> list[str]:
    """Which scrapes a selector must be found in: the job its matchers name, else either."""
    for label, op, value in selector.matchers:
        if label != "job":
            continue
        if op == "=":
            return [value]
        if op == "=~" and re.fullmatch(r"[\w-]+(\|[\w-]+)*", value):
            return value.split("|")
    return []


def check_expression(where: str, expr: str, scrapes: dict[str, Exposition]) -> list[str]:
    """Problems with `expr`: metric names no process exports, labels their series do not have."""
    problems = []
    parsed = parse_promql(expr)
    known_labels = set(TARGET_LABELS)
    for selector in parsed.selectors:
        if selector.metric in SYNTHETIC_METRICS:
            known_labels |= {label for label, _, _ in selector.matchers}
            continue
        jobs = jobs_of(selector)
        unknown_jobs = [job for job in jobs if job not in scrapes]
        if unknown_jobs:
            problems.append(f"{where}: {selector.metric} selects unknown job(s) {unknown_jobs}")
            continue
        candidates = [scrapes[job] for job in jobs] if jobs else [s for s in scrapes.values() if s.family(selector.metric)]
        if not candidates or any(s.family(selector.metric) is None for s in candidates):
            problems.append(f"{where}: metric {selector.metric} is not exported by "
                            f"{' and '.join(jobs) if jobs else 'the gateway or the worker'}")
            continue
        label_sets = [labels for s in candidates for labels in s.label_sets(selector.metric)]
        exported = {label for labels in label_sets for label in labels}
        known_labels |= exported
        for label, op, value in selector.matchers:
            if label in TARGET_LABELS:
                continue
            if label_sets and label not in exported:
                problems.append(f"{where}: {selector.metric} has no label {label!r} (it has {sorted(exported)})")
            elif label_sets and op == "=" and "$" not in value and not any(l.get(label) == value for l in label_sets):
                values = sorted({l.get(label) for l in label_sets if label in l})
                problems.append(f"{where}: {selector.metric}{{{label}={value!r}}} matches no series (values: {values})")
    for label in parsed.grouping - known_labels:
        problems.append(f"{where}: groups by {label!r}, which none of its metrics has")
    return problems


def probe_ready(admin_url: str) -> None:
    """Polls /ready until it answers 200, as a load balancer or readiness probe would: the
    chat_dependency_up{dependency} series appear at the first probe of a serving process."""

    def ready():
        try:
            return requests.get(f"{admin_url}/ready", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    poll(ready, timeout=30, what=f"{admin_url}/ready to answer 200")


@pytest.fixture(scope="module")
def scrapes(module_procs) -> dict[str, Exposition]:
    """A real gateway and worker on a private command stream (so the worker holds every shard, and
    its per-shard series appear at its first trim, made frequent here), each probed on /ready (for
    the per-dependency series) and then scraped once."""
    stream = unique("mon")
    gateway = module_procs.gateway({"COMMAND_STREAM": stream})
    worker = module_procs.worker(worker_env({"COMMAND_STREAM": stream, "DEAD_LETTER_STREAM": stream + ":dead",
                                             "WORKER_TRIM_INTERVAL_MS": "300"}))
    for process in (gateway, worker):
        probe_ready(process.admin_url)

    def trimmed():
        result = scrape(worker.admin_url)
        return result if result.label_sets("chat_command_shard_lag") else None

    worker_scrape = poll(trimmed, timeout=20, what="the worker's per-shard series (chat_command_shard_lag)")
    return {GATEWAY_JOB: scrape(gateway.admin_url), WORKER_JOB: worker_scrape}


def test_readiness_series_after_a_probe(scrapes):
    """Both processes export readiness per dependency once /ready was probed, and the limits the
    saturation alerts divide by."""
    for job, exposition in scrapes.items():
        dependencies = {labels.get("dependency") for labels in exposition.label_sets("chat_dependency_up")}
        assert dependencies == {"postgres", "redis"}, f"{job}: chat_dependency_up for {dependencies}"
        for name in ("chat_ready", "process_max_fds", "chat_http_unavailable_total"):
            assert exposition.label_sets(name), f"{job}: no {name} sample"
    assert scrapes[GATEWAY_JOB].label_sets("chat_max_connections"), "the gateway exports no chat_max_connections"
    assert scrapes[WORKER_JOB].label_sets("chat_command_oldest_pending_seconds"), \
        "the worker exports no chat_command_oldest_pending_seconds"


# --- the rules ------------------------------------------------------------------------------------


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: install the Debian package prometheus (scripts/test does)", pytrace=False)
    return path


def load_rules() -> list[dict]:
    document = yaml.safe_load(ALERTS.read_text())
    rules = [rule for group in document["groups"] for rule in group["rules"]]
    assert rules, "alerts.yml has no rules"
    return rules


def heading_anchor(title: str) -> str:
    """The anchor GitHub (and most Markdown renderers) give a heading."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def runbook_anchors() -> set[str]:
    text = OPERATIONS.read_text()
    match = re.search(r"^## Runbooks\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, "docs/OPERATIONS.md has no '## Runbooks' section"
    return {heading_anchor(title) for title in re.findall(r"^### (.+)$", match.group(1), re.MULTILINE)}


def test_promtool_check_rules():
    result = subprocess.run([promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"promtool check rules failed:\n{result.stdout}\n{result.stderr}"


# Alerts on readiness, dependencies, 503s, saturation and the oldest pending command: each must
# be fired by a case of alerts_test.yml.
READINESS_AND_SATURATION_ALERTS = {
    "ChatProcessNotReady", "ChatNoGatewayReady", "ChatDependencyDown",
    "ChatCommandOldestPendingHigh", "ChatCommandOldestPendingCritical",
    "ChatHTTPUnavailableHigh", "ChatHTTPUnavailableCritical",
    "ChatConnectionSaturationHigh", "ChatConnectionSaturationCritical",
    "ChatDescriptorSaturationHigh", "ChatDescriptorSaturationCritical",
}
# Metrics the dashboard must chart (and the alerts use).
READINESS_AND_SATURATION_METRICS = {
    "chat_ready", "chat_dependency_up", "chat_http_unavailable_total", "chat_max_connections",
    "process_max_fds", "chat_command_oldest_pending_seconds",
}


def test_promtool_unit_tests_fire_the_alerts():
    """alerts_test.yml fires the stream-pending and 5xx alerts, the readiness, dependency, 503,
    saturation and pending-age alerts (and others) from synthetic series."""
    tests = yaml.safe_load(ALERTS_TEST.read_text())
    fired = {case["alertname"] for test in tests["tests"] for case in test.get("alert_rule_test", []) if case.get("exp_alerts")}
    assert {"ChatCommandStreamPendingHigh", "ChatHTTP5xxRateHigh"} | READINESS_AND_SATURATION_ALERTS <= fired, \
        sorted({"ChatCommandStreamPendingHigh", "ChatHTTP5xxRateHigh"} | READINESS_AND_SATURATION_ALERTS - fired)
    defined = {rule["alert"] for rule in load_rules()}
    assert READINESS_AND_SATURATION_ALERTS <= defined, sorted(READINESS_AND_SATURATION_ALERTS - defined)
    result = subprocess.run([promtool(), "test", "rules", ALERTS_TEST.name], cwd=ALERTS_TEST.parent,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"promtool test rules failed:\n{result.stdout}\n{result.stderr}"


def test_every_alert_is_complete_and_links_its_runbook():
    anchors = runbook_anchors()
    docs = OPERATIONS.read_text()
    names = []
    for rule in load_rules():
        name = rule.get("alert")
        assert name, f"alerts.yml holds only alerts, not recording rules: {rule}"
        names.append(name)
        assert rule.get("for"), f"{name}: no 'for:' (a single bad scrape would page)"
        assert rule.get("labels", {}).get("severity") in SEVERITIES, f"{name}: severity label missing or unknown"
        annotations = rule.get("annotations", {})
        for key in ("summary", "description", "runbook_url"):
            assert annotations.get(key), f"{name}: annotation {key} missing"
        match = re.fullmatch(r"docs/OPERATIONS\.md#([\w-]+)", annotations["runbook_url"])
        assert match, f"{name}: runbook_url {annotations['runbook_url']!r} is not docs/OPERATIONS.md#<anchor>"
        assert match.group(1) in anchors, f"{name}: no runbook '### ...' heading with anchor #{match.group(1)} (have {sorted(anchors)})"
        assert f"`{name}`" in docs, f"{name} is not listed in docs/OPERATIONS.md (\"Alerts and dashboard\")"
    assert len(names) == len(set(names)), f"duplicate alert names: {names}"


def test_alerts_use_only_exported_metrics(scrapes):
    problems = []
    for rule in load_rules():
        problems += check_expression(f"alert {rule['alert']}", rule["expr"], scrapes)
    assert not problems, "\n".join(problems)


# --- the dashboard --------------------------------------------------------------------------------


def load_dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def all_panels(dashboard: dict) -> list[dict]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels += panel.get("panels", [])  # a collapsed row keeps its panels inside
    return panels


def panel_expressions(dashboard: dict) -> list[tuple[str, str]]:
    """(where, expression) of every panel target, with Grafana's variables given plain values."""
    found = []
    for panel in all_panels(dashboard):
        for target in panel.get("targets", []):
            found.append((f"panel {panel['id']} {panel['title']!r} {target['refId']}", grafana_to_promql(target["expr"])))
    return found


def grafana_to_promql(expr: str) -> str:
    return (expr.replace("$__rate_interval", "5m").replace("$__interval", "1m").replace("$__range", "1h")
            .replace("${job}", ".*").replace("$job", ".*").replace("${instance}", ".*").replace("$instance", ".*"))


def test_dashboard_structure():
    dashboard = load_dashboard()
    assert dashboard.get("schemaVersion", 0) >= 36, dashboard.get("schemaVersion")
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    source = variables.get("DS_PROMETHEUS")
    assert source and source["type"] == "datasource" and source["query"] == "prometheus", \
        "the dashboard needs a datasource variable DS_PROMETHEUS of type prometheus"
    for name in ("job", "instance"):
        assert variables.get(name, {}).get("type") == "query", f"no query variable {name!r}"
        assert variables[name]["datasource"] == DATASOURCE, f"variable {name} does not use ${{DS_PROMETHEUS}}"
    panels = all_panels(dashboard)
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), f"panel ids are not unique: {sorted(ids)}"
    for panel in panels:
        where = f"panel {panel['id']} {panel.get('title')!r}"
        assert panel.get("datasource") == DATASOURCE, f"{where}: datasource {panel.get('datasource')} is not ${{DS_PROMETHEUS}}"
        for target in panel.get("targets", []):
            assert target.get("datasource") == DATASOURCE, f"{where} {target.get('refId')}: datasource is not ${{DS_PROMETHEUS}}"
            assert target.get("expr", "").strip(), f"{where} {target.get('refId')}: empty expression"
        if panel["type"] != "row":
            assert panel.get("targets"), f"{where}: no query"
            assert 'instance=~"$instance"' in " ".join(t["expr"] for t in panel["targets"]), \
                f"{where}: does not follow the $instance variable"
        refs = [t["refId"] for t in panel.get("targets", [])]
        assert len(refs) == len(set(refs)), f"{where}: duplicate refIds {refs}"
    # No two panels overlap on the 24-column grid.
    boxes = [(p["id"], p["gridPos"]) for p in panels]
    for index, (first, a) in enumerate(boxes):
        assert 0 <= a["x"] and a["x"] + a["w"] <= 24, f"panel {first} is off the grid: {a}"
        for second, b in boxes[index + 1:]:
            overlap = a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]
            assert not overlap, f"panels {first} and {second} overlap: {a} {b}"


def test_dashboard_expressions_are_valid_promql(tmp_path):
    """promtool parses every panel expression (as a recording rule in a scratch file)."""
    rules = [{"record": f"dashboard:expr_{n}", "expr": expr} for n, (_, expr) in enumerate(panel_expressions(load_dashboard()))]
    scratch = tmp_path / "dashboard_rules.yml"
    scratch.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run([promtool(), "check", "rules", str(scratch)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"a dashboard expression does not parse:\n{result.stdout}\n{result.stderr}"


def test_dashboard_charts_readiness_and_saturation():
    """Panels for readiness and dependencies, 503s, connection and descriptor saturation and the
    oldest pending command's age, and the alerts on the same metrics."""
    charted = {s.metric for _, expr in panel_expressions(load_dashboard()) for s in parse_promql(expr).selectors}
    assert READINESS_AND_SATURATION_METRICS <= charted, sorted(READINESS_AND_SATURATION_METRICS - charted)
    alerted = {s.metric for rule in load_rules() for s in parse_promql(rule["expr"]).selectors}
    assert READINESS_AND_SATURATION_METRICS <= alerted, sorted(READINESS_AND_SATURATION_METRICS - alerted)


def test_dashboard_uses_only_exported_metrics(scrapes):
    dashboard = load_dashboard()
    problems = []
    for where, expr in panel_expressions(dashboard):
        problems += check_expression(where, expr, scrapes)
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["definition"].strip())
        assert match, f"variable {variable['name']}: expected label_values(<selector>, <label>)"
        where = f"variable {variable['name']}"
        problems += check_expression(where, grafana_to_promql(match.group(1)), scrapes)
        problems += check_expression(where, f"sum by ({match.group(2)}) ({grafana_to_promql(match.group(1))})", scrapes)
    assert not problems, "\n".join(problems)


# --- the restore drill ----------------------------------------------------------------------------


def test_pitr_drill():
    """scripts/pitr-drill.sh: base backup + WAL archive + recovery to a time before a DELETE brings
    back every row written before it (about 5-15 s here)."""
    env = dict(os.environ)
    result = subprocess.run([str(DRILL)], capture_output=True, text=True, timeout=100, env=env, stdin=subprocess.DEVNULL)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"pitr-drill.sh failed ({result.returncode}):\n{output[-4000:]}"
    assert "PITR drill passed" in result.stdout, output[-4000:]
    assert re.search(r"rows written before the backup: (\d+)/\1; after the backup: (\d+)/\2; after the mistake: 0", result.stdout), output
    leftovers = [line for line in result.stdout.splitlines() if line.startswith("kept ")]
    assert not leftovers, leftovers
