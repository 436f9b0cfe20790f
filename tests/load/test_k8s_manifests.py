"""deploy/k8s/: the example manifests are valid Kubernetes objects (offline schemas of
kubernetes-validate, no cluster) and agree with the harness (port, locustfile)."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from mpac_drill import PROJECT_ROOT

K8S = PROJECT_ROOT / "deploy" / "k8s"
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
VERSION = "1.30.0"


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_k8s_manifest_validates_against_kubernetes_schemas(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(doc, VERSION, strict=True)


def test_k8s_manifest_with_a_wrong_field_is_refused() -> None:
    doc = yaml.safe_load((K8S / "locust-workers.yaml").read_text())
    doc["spec"]["replicas"] = "four"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, VERSION, strict=True)


def test_k8s_workers_dial_the_master_service_with_the_repo_locustfile() -> None:
    service = yaml.safe_load((K8S / "locust-master-service.yaml").read_text())
    workers = yaml.safe_load((K8S / "locust-workers.yaml").read_text())
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    args = workers["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--master-host") + 1] == service["metadata"]["name"]
    assert int(args[args.index("--master-port") + 1]) == service["spec"]["ports"][0]["port"]
    source = kust["configMapGenerator"][0]["files"][0].split("=", 1)[1]
    assert (K8S / source).resolve() == PROJECT_ROOT / "experiments" / "load" / "locustfile.py"
