"""The chart's wiring against the real binaries.

Renders helm/stampede (default values, every helm/examples/values-*.yaml, and variants) and
checks that the pieces fit: workers dial the master Service's gRPC port; every environment
variable and flag the chart passes is one the binary's --help lists, and each binary accepts
the rendered configuration when started with it (on loopback, never the rendered addresses);
the built-in scenario passes `stampede-master check` and targets the workload Services; replicas
and arch pinning follow the values; Ingress, ServiceMonitor, PodMonitor and KEDA select what
they mean to.

Needs helm on PATH and the debug binaries (cargo build --bins); without them the tests skip
with the reason, except under CI=true, where a missing tool is a failure.
"""

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "stampede"
EXAMPLES = sorted((ROOT / "helm" / "examples").glob("values-*.yaml"))
KARPENTER = ROOT / "helm" / "examples" / "karpenter"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug"
BINARIES = ("stampede-master", "stampede-worker", "stampede-workload-server")
RELEASE = "wired"
NAMESPACE = "load"
CRDS = [
    "monitoring.coreos.com/v1/ServiceMonitor",
    "monitoring.coreos.com/v1/PodMonitor",
    "keda.sh/v1alpha1/ScaledObject",
]


def missing(reason):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI must have it)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def helm():
    path = shutil.which("helm")
    if not path:
        missing('helm is not on PATH: eval "$(../shared/tools/install-helm.sh)"')
    return path


@pytest.fixture(scope="session")
def bins():
    paths = {name: TARGET / name for name in BINARIES}
    absent = [str(p) for p in paths.values() if not p.exists()]
    if absent:
        missing(f"binaries not built (cargo build --bins): {', '.join(absent)}")
    return paths


# --- rendering ------------------------------------------------------------------------------


class Render:
    """The manifests of one `helm template`, with lookups by kind and component."""

    def __init__(self, docs, values):
        self.docs = docs
        self.values = values

    def all(self, kind):
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind, component=None, name=None):
        found = [
            d
            for d in self.all(kind)
            if (component is None or labels(d).get("app.kubernetes.io/component") == component)
            and (name is None or d["metadata"]["name"] == name)
        ]
        assert len(found) == 1, f"{len(found)} {kind} (component {component}, name {name})"
        return found[0]

    def configmap(self, name):
        return self.one("ConfigMap", name=name)

    def master_workload(self):
        kinds = [d for d in self.docs if d["kind"] in ("Job", "Deployment")]
        found = [d for d in kinds if labels(d).get("app.kubernetes.io/component") == "master"]
        assert len(found) == 1, found
        return found[0]


def labels(doc):
    return doc["metadata"].get("labels") or {}


def render(helm, values_files=(), sets=(), api_versions=()):
    cmd = [helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    for f in values_files:
        cmd += ["-f", str(f)]
    for s in sets:
        cmd += ["--set", s]
    for a in api_versions:
        cmd += ["--api-versions", a]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    # The values as the chart saw them: its defaults under the files and --set values.
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for f in values_files:
        values = merge(values, yaml.safe_load(Path(f).read_text()) or {})
    for s in sets:
        key, _, raw = s.partition("=")
        node = values
        *path, last = key.split(".")
        for part in path:
            node = node.setdefault(part, {})
        node[last] = yaml.safe_load(raw)
    return Render(docs, values)


def merge(base, over):
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out


# Each case: a name, values files, --set values, API versions the "cluster" has.
CASES = [("default", (), (), ())]
CASES += [(f.stem, (f,), (), ()) for f in EXAMPLES]
CASES += [(f"{f.stem}+crds", (f,), (), CRDS) for f in EXAMPLES]
CASES += [
    (
        "scaled, amd64 only",
        (),
        ("worker.replicas=7", "workload.arches.amd64.enabled=false", "workload.arches.arm64.replicas=3"),
        (),
    ),
    ("deployment, keda", (), ("master.mode=deployment", "worker.keda.enabled=true"), CRDS),
    ("deployment, headless", (), ("master.mode=deployment", "master.tui=false", "master.grpcPort=6000"), ()),
    ("persistent, resumes", (), ("master.summary.persistence.enabled=true",), ()),
    ("no journal", (), ("master.journal.enabled=false",), ()),
]


@pytest.fixture(scope="module", params=CASES, ids=[c[0] for c in CASES])
def case(request, helm):
    _, files, sets, apis = request.param
    return render(helm, files, sets, apis)


# --- the binaries' own description of what they accept --------------------------------------


HELP_CACHE = {}


def accepted(bins, binary, subcommand=None):
    """The flags and environment variables a binary (or subcommand) lists in --help."""
    key = (binary, subcommand)
    if key not in HELP_CACHE:
        cmd = [str(bins[binary])] + ([subcommand] if subcommand else []) + ["--help"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        flags = set(re.findall(r"(?m)^\s+(?:-\w, )?(--[a-z0-9][a-z0-9-]*)", out.stdout))
        envs = set(re.findall(r"\[env: ([A-Z0-9_]+)", out.stdout))
        assert flags, out.stdout
        HELP_CACHE[key] = (flags, envs)
    return HELP_CACHE[key]


def containers(render):
    """(workload doc, container) for every container of every pod the chart starts."""
    for doc in render.docs:
        if doc["kind"] in ("Deployment", "Job"):
            pod = doc["spec"]["template"]["spec"]
        elif doc["kind"] == "Pod":
            pod = doc["spec"]
        else:
            continue
        for c in pod["containers"]:
            yield doc, pod, c


def env_value(render, env, pod_name="pod-0"):
    """An env entry's value as the kubelet would resolve it from the rendered objects."""
    if "value" in env:
        return env["value"]
    src = env["valueFrom"]
    if "configMapKeyRef" in src:
        ref = src["configMapKeyRef"]
        return render.configmap(ref["name"])["data"][ref["key"]]
    if "secretKeyRef" in src:
        ref = src["secretKeyRef"]
        secret = render.one("Secret", name=ref["name"])
        assert ref["key"] in secret["data"], f"no key {ref['key']} in Secret {ref['name']}"
        return "wiring-test-token"
    if "fieldRef" in src:
        assert src["fieldRef"]["fieldPath"] == "metadata.name", src
        return pod_name
    raise AssertionError(f"unexpected env source {src}")


# --- tests ----------------------------------------------------------------------------------


def test_workers_dial_the_master_service(case):
    worker = case.one("Deployment", "worker")
    env = {e["name"]: e for e in worker["spec"]["template"]["spec"]["containers"][0]["env"]}
    url = urlsplit(env_value(case, env["STAMPEDE_MASTER"]))
    assert url.scheme == "http"
    service = case.one("Service", "master")
    assert url.hostname in (
        service["metadata"]["name"],
        f"{service['metadata']['name']}.{NAMESPACE}.svc",
        f"{service['metadata']['name']}.{NAMESPACE}.svc.cluster.local",
    )
    grpc = [p for p in service["spec"]["ports"] if p["name"] == "grpc"]
    assert len(grpc) == 1 and url.port == grpc[0]["port"]
    # The Service reaches the master pod's port the master binds.
    master = case.master_workload()
    pod = master["spec"]["template"]
    assert all(pod["metadata"]["labels"].get(k) == v for k, v in service["spec"]["selector"].items())
    c = pod["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    target = grpc[0]["targetPort"]
    container_port = ports[target] if isinstance(target, str) else target
    menv = {e["name"]: e for e in c["env"]}
    bind = env_value(case, menv["STAMPEDE_BIND"])
    assert int(bind.rsplit(":", 1)[1]) == container_port
    metrics = [p for p in service["spec"]["ports"] if p["name"] == "metrics"][0]
    assert int(env_value(case, menv["STAMPEDE_METRICS_BIND"]).rsplit(":", 1)[1]) == ports[metrics["targetPort"]]
    # Both sides use the same token Secret.
    assert env["STAMPEDE_TOKEN"]["valueFrom"] == menv["STAMPEDE_TOKEN"]["valueFrom"]


def test_every_env_var_and_flag_is_one_the_binary_accepts(case, bins):
    seen = set()
    for doc, _, c in containers(case):
        binary = c["command"][0]
        assert binary in BINARIES, f"{doc['metadata']['name']} runs {binary}"
        args = c.get("args", [])
        sub = args[0] if binary == "stampede-master" else None
        if sub is not None:
            assert sub in ("run", "check", "demo"), args
        flags, envs = accepted(bins, binary, sub)
        for e in c.get("env", []):
            assert e["name"] in envs, f"{doc['metadata']['name']}: {binary} does not read {e['name']}"
        for a in args:
            if a.startswith("--"):
                assert a.split("=", 1)[0] in flags, f"{doc['metadata']['name']}: {binary} {sub} has no {a}"
        seen.add(binary)
    assert "stampede-master" in seen and "stampede-worker" in seen


def test_replicas_and_arch_pinning_follow_the_values(case):
    v = case.values
    worker = case.one("Deployment", "worker")
    scaled = v["worker"]["autoscaling"]["enabled"] or case.all("ScaledObject")
    if scaled:
        assert "replicas" not in worker["spec"], "an autoscaler owns the replicas"
    else:
        assert worker["spec"]["replicas"] == v["worker"]["replicas"]
    expect = int(case.configmap(f"{RELEASE}-stampede-scenario")["data"]["expect-workers"])
    if v["master"].get("expectWorkers") is None:
        if v["worker"]["autoscaling"]["enabled"]:
            assert expect == v["worker"]["autoscaling"]["minReplicas"]
        elif case.all("ScaledObject"):
            assert expect == v["worker"]["keda"]["minReplicaCount"]
        else:
            assert expect == v["worker"]["replicas"]

    arches = {a: s for a, s in v["workload"]["arches"].items() if s["enabled"]} if v["workload"]["enabled"] else {}
    servers = [d for d in case.all("Deployment") if labels(d).get("app.kubernetes.io/component") == "workload"]
    assert sorted(labels(d)["stampede.dev/arch"] for d in servers) == sorted(arches)
    for d in servers:
        arch = labels(d)["stampede.dev/arch"]
        pod = d["spec"]["template"]["spec"]
        assert pod["nodeSelector"]["kubernetes.io/arch"] == arch
        for k, val in (arches[arch].get("nodeSelector") or {}).items():
            if k != "kubernetes.io/arch":
                assert pod["nodeSelector"][k] == val
        if v["workload"]["autoscaling"]["enabled"]:
            assert "replicas" not in d["spec"]
            hpa = case.one("HorizontalPodAutoscaler", name=d["metadata"]["name"])
            assert hpa["spec"]["scaleTargetRef"]["name"] == d["metadata"]["name"]
            assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (
                v["workload"]["autoscaling"]["minReplicas"],
                v["workload"]["autoscaling"]["maxReplicas"],
            )
        else:
            want = arches[arch].get("replicas")
            assert d["spec"]["replicas"] == (v["workload"]["replicas"] if want is None else want)
        # Its Service selects exactly its own arch's pods.
        svc = case.one("Service", name=d["metadata"]["name"])
        assert svc["spec"]["selector"] == d["spec"]["selector"]["matchLabels"]
        assert svc["spec"]["selector"]["stampede.dev/arch"] == arch
        env = {e["name"]: env_value(case, e) for e in pod["containers"][0]["env"]}
        assert env["PORT"] == str(v["workload"]["port"])
        it = arches[arch].get("instanceType") or (arches[arch].get("nodeSelector") or {}).get(
            "node.kubernetes.io/instance-type", "unknown"
        )
        assert env["INSTANCE_TYPE"] == it


def test_the_scenario_checks_and_targets_the_workload_services(case, bins, tmp_path):
    master = case.master_workload()
    c = master["spec"]["template"]["spec"]["containers"][0]
    scenario = case.configmap(f"{RELEASE}-stampede-scenario")["data"]["scenario.toml"]
    path = tmp_path / "scenario.toml"
    path.write_text(scenario)
    sets = [a for i, a in enumerate(c["args"]) if i > 0 and c["args"][i - 1] == "--set"]
    cmd = [str(bins["stampede-master"]), "check", str(path)]
    for s in sets:
        cmd += ["--set", s]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, f"{out.stdout}\n{out.stderr}"
    # The mounted file is the one the master runs.
    assert c["args"][:2] == ["run", "/etc/stampede/scenario.toml"]
    if case.values["scenario"]:
        return
    services = {
        d["metadata"]["name"]: d for d in case.all("Service") if labels(d).get("app.kubernetes.io/component") == "workload"
    }
    urls = re.findall(r'(?m)^url = "([^"]+)"', scenario)
    arches = re.findall(r'(?m)^arch = "([^"]+)"', scenario)
    assert urls and len(urls) == len(services)
    for url, arch in zip(urls, arches):
        u = urlsplit(url)
        svc = services[u.hostname]
        assert svc["spec"]["selector"]["stampede.dev/arch"] == arch
        assert u.port == svc["spec"]["ports"][0]["port"]
        assert u.path == case.values["workload"]["arches"][arch]["path"]


def start(cmd, env):
    """Starts a process whose stderr lines land in `proc.lines` (a queue) as they come."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    proc.lines = queue.Queue()

    def pump():
        for line in proc.stderr:
            proc.lines.put(line)
        proc.lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return proc


def test_each_binary_accepts_its_rendered_configuration(case, bins, tmp_path):
    """Starts every container's command with its rendered env and args. Addresses are moved to
    loopback (and the master's wait cut to 1s, its files into a temporary directory); all else
    is as rendered. The master must get as far as waiting for workers (exit 3: none came), the
    worker as far as dialling (exit 1: refused), the workload server as far as serving."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("STAMPEDE")}
    base["RUST_LOG"] = "info"
    for doc, pod, c in containers(case):
        name = doc["metadata"]["name"]
        env = dict(base)
        env.update({e["name"]: env_value(case, e, pod_name=f"{name}-0") for e in c.get("env", [])})
        mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        args = list(c.get("args", []))
        # Mounted ConfigMaps become files under tmp_path; args that name them follow.
        for mount_path, m in mounts.items():
            local = tmp_path / name / mount_path.strip("/")
            local.mkdir(parents=True, exist_ok=True)
            vol = volumes[m["name"]]
            if "configMap" in vol:
                data = case.configmap(vol["configMap"]["name"])["data"]
                items = vol["configMap"].get("items") or [{"key": k, "path": k} for k in data]
                for item in items:
                    (local / item["path"]).write_text(data[item["key"]])
            elif "secret" in vol:
                # A TLS Secret made outside the chart: a real CA and certificate stand in.
                for key, path in tls_files(tmp_path).items():
                    (local / key).write_bytes(path.read_bytes())
            args = [a.replace(mount_path, str(local)) if a.startswith(mount_path) else a for a in args]
            for k, val in env.items():
                if k.startswith("STAMPEDE") and val.startswith(mount_path):
                    env[k] = val.replace(mount_path, str(local))
        binary = c["command"][0]
        cmd = [str(bins[binary])] + args
        if binary == "stampede-master" and args and args[0] == "run" and doc["kind"] != "Pod":
            env.update(
                STAMPEDE_BIND="127.0.0.1:0",
                STAMPEDE_METRICS_BIND="127.0.0.1:0",
                STAMPEDE_WAIT_WORKERS="1s",
            )
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
            assert out.returncode == 3, f"{name}: exit {out.returncode}\n{out.stderr}"
            assert "worker(s) connected within 1s" in out.stderr, out.stderr
            assert "metrics listening on 127.0.0.1:" in out.stderr, out.stderr
        elif binary == "stampede-worker":
            env["STAMPEDE_MASTER"] = "http://127.0.0.1:1"
            # A worker redials a lost master for ever; here one refusal is the answer wanted.
            env["STAMPEDE_NO_RECONNECT"] = "true"
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
            assert out.returncode == 1, f"{name}: exit {out.returncode}\n{out.stderr}"
            assert "stampede-worker:" in out.stderr and "error: invalid value" not in out.stderr
        elif binary == "stampede-workload-server":
            env.update(LISTEN_ADDR="127.0.0.1:0", PORT="0")
            proc = start(cmd, env)
            try:
                line = wait_for(proc, "listening", 20)
                addr = re.search(r"addr=(127\.0\.0\.1:\d+)", line).group(1)
                # Answering means serving (and its SIGTERM handler is in place).
                for path in ("/healthz", "/readyz"):
                    with urllib.request.urlopen(f"http://{addr}{path}", timeout=10) as answer:
                        assert answer.status == 200, path
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    code = proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    raise
            assert code == 0, f"{name}: exit {code}"
        elif args and args[0] == "check":
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, f"{name}: {out.stderr}"


def tls_files(tmp_path):
    """tls.crt, tls.key and ca.crt as a TLS Secret holds them: a CA and a certificate it signed
    for the master's Service name (made once per test with openssl)."""
    out = tmp_path / "pki"
    files = {"tls.crt": out / "tls.crt", "tls.key": out / "tls.key", "ca.crt": out / "ca.crt"}
    if all(p.exists() for p in files.values()):
        return files
    if shutil.which("openssl") is None:
        missing("openssl is not installed (apt-get install -y openssl)")
    out.mkdir(parents=True, exist_ok=True)
    run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=out)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test CA",
        "-keyout", "ca.key", "-out", "ca.crt")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=stampede-master",
        "-keyout", "tls.key", "-out", "tls.csr")
    (out / "ext.cnf").write_text("subjectAltName=DNS:stampede-master,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "1", "-extfile", "ext.cnf", "-out", "tls.crt")
    return files


def wait_for(proc, needle, limit):
    """The first stderr line containing `needle`; fails if the process ends first or the time
    runs out."""
    deadline = time.monotonic() + limit
    seen = []
    while True:
        try:
            line = proc.lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"no `{needle}` within {limit}s:\n{''.join(seen)}") from None
        if line is None:
            raise AssertionError(f"exited {proc.wait()} before `{needle}`:\n{''.join(seen)}")
        if needle in line:
            return line
        seen.append(line)


def test_the_helm_test_run_probes_every_arch(case, bins, tmp_path):
    """The `helm test` smoke scenario checks, and asks every enabled arch to answer."""
    if not case.values["workload"]["enabled"]:
        return
    cm = case.configmap(f"{RELEASE}-stampede-test-workload")
    path = tmp_path / "smoke.toml"
    path.write_text(cm["data"]["smoke.toml"])
    out = subprocess.run([str(bins["stampede-master"]), "check", str(path)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    arches = [a for a, s in case.values["workload"]["arches"].items() if s["enabled"]]
    for arch in arches:
        assert f'"arch:{arch}/requests" = "> 0"' in cm["data"]["smoke.toml"]


def test_ingress_routes_each_path_to_its_arch(case):
    ing = case.all("Ingress")
    if not case.values["ingress"]["enabled"] or not case.values["workload"]["enabled"]:
        assert not ing
        return
    (ing,) = ing
    arches = {a: s for a, s in case.values["workload"]["arches"].items() if s["enabled"]}
    paths = {p["path"]: p["backend"]["service"] for r in ing["spec"]["rules"] for p in r["http"]["paths"]}
    for arch, s in arches.items():
        svc = case.one("Service", name=paths[s["path"]]["name"])
        assert svc["spec"]["selector"]["stampede.dev/arch"] == arch
    app = paths[case.values["ingress"]["appPath"]]
    if case.values["ingress"]["albWeightedForward"]:
        assert app["port"]["name"] == "use-annotation"
        action = json.loads(ing["metadata"]["annotations"][f"alb.ingress.kubernetes.io/actions.{app['name']}"])
        groups = action["forwardConfig"]["targetGroups"]
        assert {g["serviceName"] for g in groups} == {case.one("Service", name=f"{RELEASE}-stampede-workload-{a}")["metadata"]["name"] for a in arches}
        assert [g["weight"] for g in groups] == [arches[a]["weight"] for a in sorted(arches)]
        # Each fleet's server sends /app on to its own arch's path.
        for d in case.all("Deployment"):
            arch = labels(d).get("stampede.dev/arch")
            if arch in ("arm64", "amd64"):
                env = {e["name"]: e.get("value") for e in d["spec"]["template"]["spec"]["containers"][0]["env"]}
                assert float(env["APP_SPLIT"]) == (1.0 if arch == "arm64" else 0.0)
    else:
        assert app["name"] == f"{RELEASE}-stampede-workload-{case.values['ingress']['appArch']}"


def test_monitoring_and_keda_select_what_they_mean_to(case):
    for sm in case.all("ServiceMonitor"):
        svc = case.one("Service", "master")
        assert all(labels(svc).get(k) == v for k, v in sm["spec"]["selector"]["matchLabels"].items())
        assert {e["port"] for e in sm["spec"]["endpoints"]} <= {p["name"] for p in svc["spec"]["ports"]}
    for pm in case.all("PodMonitor"):
        pods = [d for d in case.all("Deployment") if labels(d).get("app.kubernetes.io/component") == "workload"]
        assert pods
        for d in pods:
            tpl = d["spec"]["template"]
            assert all(tpl["metadata"]["labels"].get(k) == v for k, v in pm["spec"]["selector"]["matchLabels"].items())
            ports = {p["name"] for p in tpl["spec"]["containers"][0]["ports"]}
            assert {e["port"] for e in pm["spec"]["podMetricsEndpoints"]} <= ports
    for so in case.all("ScaledObject"):
        worker = case.one("Deployment", "worker")
        assert so["spec"]["scaleTargetRef"]["name"] == worker["metadata"]["name"]
        query = so["spec"]["triggers"][0]["metadata"]["query"]
        assert "stampede_users_goal" in query and f'service="{case.one("Service", "master")["metadata"]["name"]}"' in query


def test_the_dashboard_is_a_configmap_for_the_grafana_sidecar(case):
    if not case.values["dashboards"]["enabled"]:
        assert not [d for d in case.all("ConfigMap") if d["metadata"]["name"].endswith("-dashboard")]
        return
    (cm,) = [d for d in case.all("ConfigMap") if d["metadata"]["name"].endswith("-dashboard")]
    assert labels(cm)[case.values["dashboards"]["label"]] == str(case.values["dashboards"]["labelValue"])
    dash = json.loads(cm["data"]["stampede.json"])
    assert dash["uid"] and dash["panels"]


def served_metric_names(url):
    """Sample names an OpenMetrics endpoint declares, from its # TYPE lines."""
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    names = set()
    for name, kind in re.findall(r"(?m)^# TYPE (\S+) (\S+)$", text):
        suffixes = {"counter": ["_total"], "info": ["_info"], "histogram": ["_bucket", "_count", "_sum"]}
        names.update(name + s for s in suffixes.get(kind, [""]))
    return names


def test_the_dashboard_queries_metrics_the_binaries_serve(bins, tmp_path):
    """Every stampede_* metric in the dashboard's queries is one a real master or workload server
    declares on its /metrics (both started here on loopback)."""
    dash = json.loads((CHART / "dashboards" / "stampede.json").read_text())
    exprs = " ".join(t["expr"] for p in dash["panels"] for t in p.get("targets", []))
    used = set(re.findall(r"\bstampede_[a-z0-9_]+", exprs))
    assert used
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAMPEDE")}
    env["RUST_LOG"] = "info"
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        'name = "dash"\nrun_time = "10s"\n[[target]]\nname = "t"\nurl = "http://127.0.0.1:9/x"\n'
        'arch = "arm64"\n[[request]]\nname = "r"\npath = "/"\n[load]\nusers = 1\n'
    )
    master = start(
        [str(bins["stampede-master"]), "run", str(scenario), "--headless", "--expect-workers", "1",
         "--bind", "127.0.0.1:0", "--metrics-bind", "127.0.0.1:0", "--wait-workers", "60s",
         "--token", "dashboard-test"],
        env,
    )
    server = start([str(bins["stampede-workload-server"]), "--listen", "127.0.0.1:0"], env)
    try:
        line = wait_for(master, "metrics listening on ", 30)
        served = served_metric_names(f"http://{line.split('metrics listening on ')[1].strip()}/metrics")
        addr = re.search(r"addr=(\S+)", wait_for(server, "listening", 30)).group(1)
        served |= served_metric_names(f"http://{addr}/metrics")
    finally:
        for p in (master, server):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
    assert used <= served, f"not served: {sorted(used - served)}"


def master_env(render):
    job = render.master_workload()
    pod = job["spec"]["template"]["spec"]
    (master,) = [c for c in pod["containers"] if c["name"] == "master"]
    return job, {e["name"]: env_value(render, e) for e in master["env"]}


def test_the_journal_lives_on_the_summary_volume_and_a_restart_resumes_with_persistence(helm):
    m = "master.summary.persistence.enabled"
    for sets, resumes in [((), False), ((f"{m}=true",), True), ((f"{m}=true", "master.journal.resume=false"), False)]:
        r = render(helm, (), sets)
        job, env = master_env(r)
        assert env["STAMPEDE_STATE_DIR"] == r.values["master"]["summary"]["dir"]
        assert ("STAMPEDE_RESUME" in env) == resumes, (sets, env)
        spec = job["spec"]
        if resumes:
            assert env["STAMPEDE_RESUME"] == "auto"
            # A killed master is restarted to resume; one that ended its run (1, 2, 3) never is.
            assert spec["backoffLimit"] > 0
            rules = spec["podFailurePolicy"]["rules"]
            assert rules[0]["action"] == "FailJob"
            assert rules[0]["onExitCodes"]["values"] == [1, 2, 3]
        else:
            assert spec["backoffLimit"] == 0 and "podFailurePolicy" not in spec
    _, env = master_env(render(helm, (), ("master.journal.enabled=false",)))
    assert env.get("STAMPEDE_NO_JOURNAL") == "true" and "STAMPEDE_RESUME" not in env


def test_karpenter_examples_fit_the_values_that_use_them():
    pools = {}
    for f in sorted(KARPENTER.glob("*.yaml")):
        doc = yaml.safe_load(f.read_text())
        assert doc["kind"] == "NodePool" and doc["apiVersion"] == "karpenter.sh/v1", f
        reqs = {r["key"]: r for r in doc["spec"]["template"]["spec"]["requirements"]}
        for key in ("kubernetes.io/arch", "karpenter.k8s.aws/instance-generation", "karpenter.k8s.aws/instance-cpu"):
            assert key in reqs, f"{f.name}: no {key} requirement"
        pools[doc["metadata"]["name"]] = doc
    assert {"stampede-arm64", "stampede-amd64"} <= set(pools)
    eks = yaml.safe_load((ROOT / "helm" / "examples" / "values-eks-alb.yaml").read_text())
    for arch, s in eks["workload"]["arches"].items():
        pool = pools[s["nodeSelector"]["karpenter.sh/nodepool"]]
        reqs = {r["key"]: r for r in pool["spec"]["template"]["spec"]["requirements"]}
        assert reqs["kubernetes.io/arch"]["values"] == [arch]
        family = s["nodeSelector"]["node.kubernetes.io/instance-type"].split(".")[0]
        assert family in reqs["karpenter.k8s.aws/instance-family"]["values"]
    workers = pools[eks["worker"]["nodeSelector"]["karpenter.sh/nodepool"]]
    for taint in workers["spec"]["template"]["spec"].get("taints", []):
        assert any(
            t["key"] == taint["key"] and t.get("value") == taint.get("value") and t["effect"] == taint["effect"]
            for t in eks["worker"]["tolerations"]
        ), f"workers do not tolerate {taint}"
