"""One entry point for every rendered object: Kubernetes' own kinds against the Kubernetes JSON schemas of a pinned
version (kubernetes-validate, strict: unknown fields fail), custom resources against their vendored CRD."""

from __future__ import annotations

import kubernetes_validate

from tests.infra.crd_schema import crd_errors, crd_schemas

#: The Kubernetes version the manifests target (GKE's regular channel at the time of writing).
KUBERNETES_VERSION = "1.32.0"


def errors(obj: dict) -> list[str]:
    """Why `obj` is invalid (empty when it is valid). An object of a kind neither source knows is an error too,
    never a silent pass."""
    name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    if (obj.get("apiVersion"), obj.get("kind")) in crd_schemas():
        return [f"{name}: {e}" for e in crd_errors(obj)]
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        return [f"{name}: {'.'.join(map(str, e.path)) or '<root>'}: {e.message}"]
    except kubernetes_validate.SchemaNotFoundError as e:
        return [f"{name}: {e.message} (and no vendored CRD)"]
    return []
