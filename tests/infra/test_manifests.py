"""infra/'s kustomizations render offline, validate strictly (Kubernetes 1.32 schemas; the Trainer's CRDs), and
agree with the code: namespaces, pinned images, the Secret/ConfigMap the tasks read, the NetworkPolicy's reach."""

from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path

import pytest
import yaml

from matta_core.cluster.settings import (
    MLFLOW_SECRET_OPTIONAL_KEYS,
    MLFLOW_SECRET_REQUIRED_KEYS,
    SETTINGS_CONFIG_MAP_KEYS,
    ClusterSection,
)
from matta_core.image import check_cluster_image_ref
from tests.infra.render import INFRA, KUSTOMIZATIONS, OVERLAYS, UNTRACKED, documents, kustomize
from tests.infra.validate import errors

KFP_NAMESPACE = "kubeflow-user-example-com"
MLFLOW_NAMESPACE = "mlflow"
CLUSTER_SCOPED = {"Namespace", "ClusterTrainingRuntime"}
# Which namespace each kind of object belongs in (the KFP objects in the profile namespace, the server in mlflow).
EXPECTED_NAMESPACE = {
    ("ConfigMap", "kfp-launcher"): KFP_NAMESPACE, ("ConfigMap", "matta-settings"): KFP_NAMESPACE,
    ("Secret", "matta-mlflow"): KFP_NAMESPACE, ("ServiceAccount", "default-editor"): KFP_NAMESPACE,
    ("TrainJob", "matta-train"): KFP_NAMESPACE,
}


def one(objects: list[dict], kind: str, name: str | None = None) -> dict:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def pod_specs(obj: dict) -> list[dict]:
    """Every pod spec inside an object, however deep (Deployment, ClusterTrainingRuntime's JobSet template)."""
    found: list[dict] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "containers" in node and isinstance(node["containers"], list):
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(obj.get("spec", {}))
    return found


def secret_data(secret: dict) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_every_object_validates_strictly(rendered: dict[str, list[dict]], name: str) -> None:
    objects = rendered[name]
    assert objects, f"{name} rendered nothing"
    problems = [p for obj in objects for p in errors(obj)]
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_objects_land_in_the_intended_namespace(rendered: dict[str, list[dict]], name: str) -> None:
    for obj in rendered[name]:
        kind, meta = obj["kind"], obj["metadata"]
        if kind in CLUSTER_SCOPED:
            assert "namespace" not in meta, f"{kind}/{meta['name']} is cluster-scoped"
            continue
        expected = EXPECTED_NAMESPACE.get((kind, meta["name"]), MLFLOW_NAMESPACE)
        assert meta.get("namespace") == expected, f"{kind}/{meta['name']} in {meta.get('namespace')}, not {expected}"


@pytest.mark.parametrize("name", OVERLAYS)
def test_images_are_pinned_registry_versions(rendered: dict[str, list[dict]], name: str) -> None:
    images = [c["image"] for obj in rendered[name] for spec in pod_specs(obj)
              for c in spec["containers"] + spec.get("initContainers", [])]
    assert len(images) == 2  # the MLflow server and the Trainer runtime
    for image in images:
        check_cluster_image_ref(image)  # a registry host, an immutable version tag or digest, never latest
    assert any(i.endswith("/mlflow-server:3.17.2") for i in images), images


def test_prod_makes_mlflow_highly_available(rendered: dict[str, list[dict]]) -> None:
    dev, prod = (one(rendered[f"overlays/{env}"], "Deployment", "mlflow-server") for env in ("dev", "prod"))
    assert dev["spec"]["replicas"] == 1
    assert prod["spec"]["replicas"] == 2
    pod = prod["spec"]["template"]["spec"]
    assert pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
    pdb = one(rendered["overlays/prod"], "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= prod["spec"]["template"]["metadata"]["labels"].items()
    assert not [o for o in rendered["overlays/dev"] if o["kind"] == "PodDisruptionBudget"]


@pytest.mark.parametrize("name", OVERLAYS)
def test_mlflow_server_settings(rendered: dict[str, list[dict]], name: str) -> None:
    objects = rendered[name]
    deployment = one(objects, "Deployment", "mlflow-server")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = container["args"]
    assert args[0] == "server" and "--app-name=basic-auth" in args and "--serve-artifacts" in args
    assert any(a.startswith("--workers=") for a in args)
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    config = one(objects, "ConfigMap", container["envFrom"][0]["configMapRef"]["name"])
    assert config["data"]["MLFLOW_ARTIFACTS_DESTINATION"].startswith("gs://")
    credentials = secret_data(one(objects, "Secret", container["envFrom"][1]["secretRef"]["name"]))
    assert credentials["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql://")
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] == "/health"
    assert pod["securityContext"]["runAsNonRoot"]
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    security = container["securityContext"]
    assert security == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                        "capabilities": {"drop": ["ALL"]}}
    assert {"requests", "limits"} <= container["resources"].keys()
    assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}
    account = one(objects, "ServiceAccount", pod["serviceAccountName"])
    assert account["metadata"]["annotations"]["iam.gke.io/gcp-service-account"].endswith(".iam.gserviceaccount.com")


def _selects(selector: dict, labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, "only matchLabels selectors are evaluated here"
    return selector.get("matchLabels", {}).items() <= labels.items()


@pytest.mark.parametrize("name", OVERLAYS)
def test_network_policy_admits_only_the_pipeline(rendered: dict[str, list[dict]], name: str) -> None:
    objects = rendered[name]
    policy = one(objects, "NetworkPolicy", "mlflow-server")
    deployment = one(objects, "Deployment", "mlflow-server")
    assert policy["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    assert _selects(policy["spec"]["podSelector"], deployment["spec"]["template"]["metadata"]["labels"])
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    assert [p["port"] for p in rule["ports"]] == [5000]
    peers = rule["from"]
    profile = {"kubernetes.io/metadata.name": KFP_NAMESPACE}
    # Every peer is a pod selector inside the profile namespace: no open namespace or ipBlock.
    assert all(set(p) == {"namespaceSelector", "podSelector"} and _selects(p["namespaceSelector"], profile)
               for p in peers)
    kfp_pod = {"pipelines.kubeflow.org/v2_component": "true", "pipeline/runid": "r"}
    assert any(_selects(p["podSelector"], kfp_pod) for p in peers)
    runtime = one(objects, "ClusterTrainingRuntime")
    trainer_labels = runtime["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"][
        "metadata"]["labels"]
    assert any(_selects(p["podSelector"], trainer_labels) for p in peers)
    assert not any(_selects(p["podSelector"], {"app": "something-else"}) for p in peers)


@pytest.mark.parametrize("name", OVERLAYS)
def test_kfp_secret_and_config_map_match_the_code(rendered: dict[str, list[dict]], name: str) -> None:
    objects = rendered[name]
    section = ClusterSection.model_validate(
        yaml.safe_load((INFRA / "kfp" / "cluster-section.example.yaml").read_text())["cluster"])
    secret = one(objects, "Secret", section.mlflow_secret)
    keys = set(secret_data(secret))
    assert set(MLFLOW_SECRET_REQUIRED_KEYS) <= keys <= {*MLFLOW_SECRET_REQUIRED_KEYS, *MLFLOW_SECRET_OPTIONAL_KEYS}
    # Basic auth (infra/README.md): the pipeline's user and password, no token.
    assert {"MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"} <= keys
    assert secret_data(secret)["MLFLOW_TRACKING_URI"] == "http://mlflow.mlflow.svc.cluster.local:5000"
    config_map = one(objects, "ConfigMap", section.settings_config_map)
    assert config_map["data"] and set(config_map["data"]) <= set(SETTINGS_CONFIG_MAP_KEYS)
    launcher = one(objects, "ConfigMap", "kfp-launcher")
    assert launcher["data"]["defaultPipelineRoot"] == section.pipeline_root
    # The Trainer runtime reads the same two objects by name.
    runtime = one(objects, "ClusterTrainingRuntime")
    (container,) = [c for spec in pod_specs(runtime) for c in spec["containers"]]
    refs = {next(iter(ref.values()))["name"] for ref in container["envFrom"]}
    assert refs == {section.mlflow_secret, section.settings_config_map}


def test_mlflow_service_reaches_the_server_named_in_the_secret(rendered: dict[str, list[dict]]) -> None:
    objects = rendered["overlays/prod"]
    service = one(objects, "Service", "mlflow")
    uri = secret_data(one(objects, "Secret", "matta-mlflow"))["MLFLOW_TRACKING_URI"]
    meta = service["metadata"]
    assert uri == f"http://{meta['name']}.{meta['namespace']}.svc.cluster.local:{service['spec']['ports'][0]['port']}"
    deployment = one(objects, "Deployment", "mlflow-server")
    assert _selects({"matchLabels": service["spec"]["selector"]}, deployment["spec"]["template"]["metadata"]["labels"])
    config = deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"]
    allowed = one(objects, "ConfigMap", config)["data"]["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    assert uri.removeprefix("http://") in allowed


def test_gpu_toleration_matches_the_node_pool_taint(rendered: dict[str, list[dict]]) -> None:
    runtime = one(rendered["overlays/prod"], "ClusterTrainingRuntime")
    (spec,) = pod_specs(runtime)
    taint = {"key": "nvidia.com/gpu", "effect": "NoSchedule"}  # infra/gcp/gke.tf: nvidia.com/gpu=present:NoSchedule
    assert any(t.items() >= taint.items() and t["operator"] == "Exists" for t in spec["tolerations"])


def test_trainjob_runs_matta_train_on_several_nodes(rendered: dict[str, list[dict]]) -> None:
    job = one(rendered["trainer/job"], "TrainJob")
    runtime = one(rendered["overlays/prod"], "ClusterTrainingRuntime")
    assert job["spec"]["runtimeRef"]["name"] == runtime["metadata"]["name"]
    assert job["spec"]["trainer"]["numNodes"] >= 2
    assert "torch" in runtime["spec"]["mlPolicy"]
    (container,) = [c for spec in pod_specs(runtime) for c in spec["containers"]]
    assert container["command"] == ["torchrun", "--no-python", "matta", "component", "train"]
    flags = [a for a in job["spec"]["trainer"]["args"] if a.startswith("--")]
    assert {"--prepared", "--teacher", "--trained"} <= set(flags)


# --- the validator bites ---------------------------------------------------------------------------------


def _broken(objects: list[dict], kind: str, mutate: object) -> dict:
    obj = yaml.safe_load(yaml.safe_dump(one(objects, kind)))
    mutate(obj)  # type: ignore[operator]
    return obj


@pytest.mark.parametrize("kind, mutate", [
    ("Deployment", lambda o: o["spec"]["template"]["spec"]["containers"][0].update(imagePullPolcy="Always")),
    ("Deployment", lambda o: o["spec"].update(replicas="two")),
    ("NetworkPolicy", lambda o: o["spec"].update(podSelectr={})),
    ("ClusterTrainingRuntime", lambda o: o["spec"].update(numNodes=2)),
    ("ClusterTrainingRuntime",
     lambda o: o["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"][
         "containers"][0].update(imagePullPolcy="Always")),
    ("ClusterTrainingRuntime", lambda o: o["spec"]["mlPolicy"].update(numNodes="four")),
])
def test_validator_refuses_broken_objects(rendered: dict[str, list[dict]], kind: str, mutate: object) -> None:
    assert errors(_broken(rendered["overlays/prod"], kind, mutate))


def test_validator_refuses_unknown_trainjob_fields(rendered: dict[str, list[dict]]) -> None:
    job = rendered["trainer/job"][0]
    assert errors(job) == []
    assert errors({**job, "spec": {**job["spec"], "nodes": 2}})
    assert errors({**job, "spec": {**job["spec"], "trainer": {**job["spec"]["trainer"], "numNode": 2}}})
    assert errors({**job, "spec": {k: v for k, v in job["spec"].items() if k != "runtimeRef"}})


def test_validator_refuses_unknown_kinds() -> None:
    assert errors({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})


def test_a_broken_overlay_fails_to_render(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    with pytest.raises(AssertionError, match="kubectl kustomize"):
        kustomize(tmp_path)


def test_overlays_do_not_render_without_the_users_secret_files(tmp_path: Path) -> None:
    # The checked-in tree holds examples only: applying it unfilled fails instead of deploying placeholders.
    untracked = [Path(p).name for p in UNTRACKED]
    shutil.copytree(INFRA, tmp_path / "infra", ignore=shutil.ignore_patterns(*untracked, "crds"))
    for missing in untracked:
        with pytest.raises(AssertionError, match=re.escape(missing)):
            kustomize(tmp_path / "infra" / "overlays" / "dev")
        example = next(e for t, e in UNTRACKED.items() if t.endswith(missing))
        target = next(t for t in UNTRACKED if t.endswith(missing))
        shutil.copyfile(tmp_path / "infra" / example, tmp_path / "infra" / target)
    assert documents(kustomize(tmp_path / "infra" / "overlays" / "dev"))


@pytest.mark.parametrize("name", OVERLAYS)
def test_every_pod_is_locked_down(rendered: dict[str, list[dict]], name: str) -> None:
    # Our own check beside checkov, which does not know the Trainer's kinds: every pod spec, however nested.
    specs = [(obj["metadata"]["name"], spec) for obj in rendered[name] for spec in pod_specs(obj)]
    assert len(specs) == 2
    for owner, spec in specs:
        assert spec["securityContext"]["runAsNonRoot"] is True, owner
        assert spec["securityContext"]["runAsUser"] != 0, owner
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, owner
            assert security["readOnlyRootFilesystem"] is True, owner
            assert security["capabilities"]["drop"] == ["ALL"], owner
            assert {"cpu", "memory"} <= container["resources"]["requests"].keys(), owner
            assert {"cpu", "memory"} <= container["resources"]["limits"].keys(), owner
