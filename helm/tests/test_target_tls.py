"""A private CA for https:// targets, from a Secret: mounted where the scenario's
`[target.tls] ca` points, in every pod that reads the scenario (the master, and `helm test`'s
check), and the scenario with that file passes `stampede-master check`. Uses the shipped
scenarios/https.toml with its `ca` pointed at the mount, as the chart's values say to.
"""

import re
import subprocess

import yaml

from test_wiring import ROOT, RELEASE, bins, helm, labels, render, tls_files  # noqa: F401

MOUNT = "/etc/stampede/target-ca"


def https_scenario():
    text = (ROOT / "scenarios" / "https.toml").read_text()
    return re.sub(r'(?m)^ca = "[^"]+"', f'ca = "{MOUNT}/ca.crt"', text)


def render_with_ca(helm, tmp_path, secret="shop-ca"):
    values = tmp_path / "values-target-ca.yaml"
    values.write_text(yaml.safe_dump({"scenario": https_scenario(), "targetTls": {"caSecret": secret}}))
    return render(helm, (values,))


def pods_reading_the_scenario(r):
    """(name, pod spec, container) of the master and of `helm test`'s scenario check."""
    master = r.master_workload()
    pod = master["spec"]["template"]["spec"]
    yield "master", pod, next(c for c in pod["containers"] if c["name"] == "master")
    check = r.one("Pod", name=f"{RELEASE}-stampede-test-scenario")
    yield "helm test", check["spec"], check["spec"]["containers"][0]


def mounted_file(pod, container, secret):
    """The path where `secret`'s keys appear in `container`, by key."""
    volumes = [v for v in pod.get("volumes", []) if v.get("secret", {}).get("secretName") == secret]
    assert len(volumes) == 1, pod.get("volumes")
    (volume,) = volumes
    (mount,) = [m for m in container.get("volumeMounts", []) if m["name"] == volume["name"]]
    assert mount.get("readOnly") is True
    return {i["key"]: f"{mount['mountPath']}/{i['path']}" for i in volume["secret"]["items"]}


def test_the_ca_secret_is_mounted_where_the_scenario_expects(helm, bins, tmp_path):
    r = render_with_ca(helm, tmp_path)
    scenario = r.configmap(f"{RELEASE}-stampede-scenario")["data"]["scenario.toml"]
    wanted = set(re.findall(r'(?m)^ca = "([^"]+)"', scenario))
    assert wanted == {f"{MOUNT}/ca.crt"}, wanted
    for name, pod, container in pods_reading_the_scenario(r):
        files = mounted_file(pod, container, "shop-ca")
        assert set(files.values()) == wanted, (name, files)
    # The workers are sent the certificates with the run: no pod of theirs needs the Secret.
    worker = r.one("Deployment", component="worker")["spec"]["template"]["spec"]
    assert all(v.get("secret", {}).get("secretName") != "shop-ca" for v in worker.get("volumes", []))
    # With the mounted file in place (here: a folder standing in for the mount), the master
    # accepts the scenario.
    ca = tls_files(tmp_path)["ca.crt"]
    mount = tmp_path / "mount"
    mount.mkdir()
    (mount / "ca.crt").write_bytes(ca.read_bytes())
    local = tmp_path / "scenario.toml"
    local.write_text(scenario.replace(MOUNT, str(mount)))
    out = subprocess.run([str(bins["stampede-master"]), "check", str(local)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, f"{out.stdout}\n{out.stderr}"
    # Without the file the same scenario is refused, naming the key: the mount is what makes it.
    (tmp_path / "missing.toml").write_text(scenario.replace(MOUNT, str(tmp_path / "nowhere")))
    out = subprocess.run([str(bins["stampede-master"]), "check", str(tmp_path / "missing.toml")], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "tls.ca" in out.stderr, out.stderr


def test_no_ca_secret_mounts_nothing(helm):
    r = render(helm)
    for docs in (r.all("Job"), r.all("Deployment")):
        for d in docs:
            vols = d["spec"]["template"]["spec"].get("volumes", [])
            assert all(v["name"] != "target-ca" for v in vols), labels(d)
    check = r.one("Pod", name=f"{RELEASE}-stampede-test-scenario")
    assert all(v["name"] != "target-ca" for v in check["spec"].get("volumes", []))
