"""Validating custom resources against the openAPIV3Schema of their vendored CRD (infra/trainer/crds/), strictly.

The API server prunes fields a structural schema does not name (or, with kubectl's default strict field
validation, refuses them); plain JSON Schema lets them through. So every object schema that lists `properties`
and neither sets `additionalProperties` nor `x-kubernetes-preserve-unknown-fields` is closed here
(`additionalProperties: false`): an unknown or misspelt field anywhere fails, as `kubectl apply` would refuse it.
Not checked: CEL rules (`x-kubernetes-validations`), formats, defaults, and whether referenced objects exist."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

CRD_DIR = Path(__file__).resolve().parents[2] / "infra" / "trainer" / "crds"
#: The ObjectMeta fields a manifest may set (the CRD schema leaves `metadata` open: the API server checks it).
_METADATA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"}, "generateName": {"type": "string"}, "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "additionalProperties": False,
}


def _closed(schema: Any) -> Any:
    if isinstance(schema, dict):
        schema = {key: _closed(value) for key, value in schema.items()}
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    return schema


@cache
def crd_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> the closed JSON Schema of that version, for every CRD in infra/trainer/crds/."""
    schemas: dict[tuple[str, str], dict] = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        crd = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = _closed(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
            schema["properties"]["metadata"] = _METADATA
            schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata", "spec"})
            schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


def crd_errors(obj: dict) -> list[str]:
    """What is wrong with `obj` by its CRD's schema ("path: message" each); KeyError if no vendored CRD has it."""
    schema = crd_schemas()[(obj["apiVersion"], obj["kind"])]
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(obj)]
