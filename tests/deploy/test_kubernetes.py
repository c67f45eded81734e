"""deploy/kubernetes: valid manifests (offline, against the Kubernetes OpenAPI schemas that
the kubernetes-validate package ships), which fit together and fit Vigil.

Strict validation rejects unknown fields, so a typo such as `replica: 3` fails; one test
proves it on a copy. The ConfigMap's vigil.yml goes through `vigil check-config` with the
Secret's placeholder files at the paths the pod would have them.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import kubernetes_validate
import pytest
import yaml

HERE = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
# the oldest Kubernetes still common in managed clusters, and the newest the schemas know
VERSIONS = ["1.30", kubernetes_validate.utils.major_minor(kubernetes_validate.latest_version())]
MANIFESTS = sorted(p.name for p in HERE.iterdir() if p.suffix in (".yaml", ".yml") and p.name != "kustomization.yaml")


def load(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((HERE / name).read_text()) if d is not None]


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for m in MANIFESTS for d in load(m) if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''} in deploy/kubernetes, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def sts() -> dict[str, Any]:
    return one("StatefulSet")


@pytest.fixture(scope="module")
def pod(sts: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = sts["spec"]["template"]["spec"]
    return spec


@pytest.fixture(scope="module")
def container(pod: dict[str, Any]) -> dict[str, Any]:
    (c,) = [c for c in pod["containers"] if c["name"] == "vigil"]
    return c


def env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", [])}


def mount_of(pod: dict[str, Any], container: dict[str, Any], **source: str) -> str:
    """mountPath of the volume whose source matches, e.g. configMap="vigil-config"."""
    ((kind, ref),) = source.items()
    key = {"configMap": "name", "secret": "secretName"}[kind]
    names = [v["name"] for v in pod["volumes"] if v.get(kind, {}).get(key) == ref]
    assert len(names) == 1, f"no single {kind} volume of {ref}"
    (path,) = [m["mountPath"] for m in container["volumeMounts"] if m["name"] == names[0]]
    return str(path)


def under(path: str, folder: str) -> bool:
    return PurePosixPath(path).is_relative_to(folder)


# --- schemas -------------------------------------------------------------------------


def test_there_are_manifests() -> None:
    assert {"configmap.yaml", "secret.yaml", "service.yaml", "statefulset.yaml"} <= set(MANIFESTS)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_validates_strictly(name: str, version: str) -> None:
    docs = load(name)
    assert docs, f"{name} holds no resource"
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(map(str, exc.path))
            pytest.fail(f"{name}: {doc['kind']}/{doc['metadata']['name']} at {where}: {exc.message} (Kubernetes {version})")


@pytest.mark.parametrize(
    ("where", "good", "bad"),
    [((), "replicas", "replica"),
     (("template", "spec", "containers", 0), "readinessProbe", "readinesProbe"),
     (("template", "spec", "securityContext"), "runAsNonRoot", "runAsNonroot")],
)
def test_a_typo_fails_validation(sts: dict[str, Any], where: tuple[Any, ...], good: str, bad: str) -> None:
    broken = copy.deepcopy(sts)
    node = broken["spec"]
    for key in where:
        node = node[key]
    node[bad] = node.pop(good)
    with pytest.raises(kubernetes_validate.ValidationError, match=f"'{bad}' was unexpected"):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_kustomization_lists_every_manifest_and_nothing_else() -> None:
    kust = yaml.safe_load((HERE / "kustomization.yaml").read_text())
    assert kust["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kust["kind"] == "Kustomization"
    resources = kust["resources"]
    assert len(resources) == len(set(resources)), f"listed twice: {resources}"
    assert sorted(resources) == MANIFESTS
    assert set(kust) <= {"apiVersion", "kind", "resources", "images"}, "keep kustomization.yaml plain"


def test_every_resource_is_in_one_namespace() -> None:
    namespaces = {d["metadata"].get("namespace") for m in MANIFESTS for d in load(m) if d["kind"] != "Namespace"}
    assert len(namespaces) == 1
    assert None not in namespaces
    if "namespace.yaml" in MANIFESTS:
        assert one("Namespace")["metadata"]["name"] in namespaces


# --- the StatefulSet -------------------------------------------------------------------


def test_probes_use_the_named_port(container: dict[str, Any]) -> None:
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8080}
    paths = {probe: container[probe]["httpGet"] for probe in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert paths == {
        "startupProbe": {"path": "/healthz", "port": "http"},
        "livenessProbe": {"path": "/healthz", "port": "http"},
        "readinessProbe": {"path": "/readyz", "port": "http"},
    }
    # the start (state restored, queries checked) may take minutes; liveness must not kill it
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120


def test_shard_count_equals_replicas(sts: dict[str, Any], container: dict[str, Any]) -> None:
    match = re.fullmatch(r"auto/(\d+)", env(container)["VIGIL_SHARD"])
    assert match, "VIGIL_SHARD must be auto/N: the shard is the pod's ordinal"
    assert int(match.group(1)) == sts["spec"]["replicas"] == 3


def test_stateful_set_shape(sts: dict[str, Any], pod: dict[str, Any]) -> None:
    spec = sts["spec"]
    assert spec["podManagementPolicy"] == "Parallel"
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    # Vigil saves its state within 5 s of SIGTERM; Kubernetes must wait that long, not much longer
    assert 6 <= pod["terminationGracePeriodSeconds"] <= 30
    headless = one("Service", spec["serviceName"])["spec"]
    assert headless["clusterIP"] == "None"
    for svc in load("service.yaml"):
        assert svc["spec"]["selector"].items() <= labels.items()
        assert [(p["name"], p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [("http", 8080, "http")]
    assert {d["metadata"]["name"] for d in load("service.yaml")} == {spec["serviceName"], "vigil"}
    annotations = sts["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8080"


def test_runs_as_non_root_with_a_read_only_root(pod: dict[str, Any], container: dict[str, Any]) -> None:
    ctx = container["securityContext"]
    assert ctx["runAsNonRoot"] is True
    assert ctx["runAsUser"] == 10001
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["fsGroup"] == 10001  # the volume is writable by that user
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= container["resources"][kind].keys()


def test_what_vigil_writes_is_on_a_volume(sts: dict[str, Any], pod: dict[str, Any], container: dict[str, Any]) -> None:
    """With a read-only root, every path Vigil writes must be a mounted volume."""
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    claims = [t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]]
    assert claims == ["data"]
    assert mounts["data"] == "/var/lib/vigil"
    config = yaml.safe_load(one("ConfigMap")["data"]["vigil.yml"])
    assert config["data_dir"] == mounts["data"]
    empty = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    assert any(mounts[n] == "/tmp" for n in empty), "Python's tempfile needs a writable /tmp"
    # numba's compiled-code cache is written beside the sources unless told otherwise,
    # and with no writable place at all the import of the detectors fails
    cache = env(container)["NUMBA_CACHE_DIR"]
    assert any(under(cache, mounts[n]) for n in empty)


# --- the ConfigMap and the Secret -------------------------------------------------------


def test_config_is_the_one_the_container_reads(pod: dict[str, Any], container: dict[str, Any]) -> None:
    cm = one("ConfigMap")
    folder = mount_of(pod, container, configMap=cm["metadata"]["name"])
    args = container["args"]
    assert args[0] == "run"
    path = PurePosixPath(args[args.index("--config") + 1])
    assert str(path.parent) == folder
    assert path.name in cm["data"]
    server = yaml.safe_load(cm["data"][path.name])["server"]
    assert server["listen"] == "0.0.0.0:8080"  # every interface of the pod, on the named port


def test_secret_holds_only_placeholders() -> None:
    secret = one("Secret")
    assert "data" not in secret, "use stringData, so the placeholders read as what they are"
    values = secret["stringData"]
    assert values
    for key, value in values.items():
        assert value.startswith("https://"), key  # check-config wants a URL
        assert "REPLACE" in value, key
        assert ".invalid/" in value, key  # a name that never resolves


def test_config_passes_check_config(tmp_path: Path, pod: dict[str, Any], container: dict[str, Any]) -> None:
    cm, secret = one("ConfigMap"), one("Secret")
    text = cm["data"]["vigil.yml"]
    folder = mount_of(pod, container, secret=secret["metadata"]["name"])
    files = re.findall(r"\{file: ([^}\s]+)\}", "\n".join(line.split("#")[0] for line in text.splitlines()))
    assert len(files) >= 2, "the receivers read their URLs from the Secret's files"
    for path in files:
        assert under(path, folder), f"{path} is not in the Secret's mount {folder}"
        assert PurePosixPath(path).name in secret["stringData"], f"{path}: no such key in the Secret"
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for key, value in secret["stringData"].items():
        (secrets / key).write_text(value)
    config = tmp_path / "vigil.yml"
    config.write_text(text.replace(f"{folder}/", f"{secrets}/"))
    proc = subprocess.run(
        [sys.executable, "-m", "vigil", "check-config", str(config)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    receivers = yaml.safe_load(text)["notify"]["receivers"]
    assert f"{len(receivers)} receivers" in proc.stdout
    assert len(yaml.safe_load(text)["prometheus"]["queries"]) == 2
