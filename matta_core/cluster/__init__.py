"""Cluster settings of a pipeline run: compute per step (``resources:``) and where it runs (``cluster:``)."""

from matta_core.cluster.resources import STEPS, ResourcesSection, StepResources, Toleration, parse_quantity
from matta_core.cluster.settings import (
    MLFLOW_SECRET_OPTIONAL_KEYS,
    MLFLOW_SECRET_REQUIRED_KEYS,
    SETTINGS_CONFIG_MAP_KEYS,
    ClusterSection,
    check_kubernetes_name,
)

__all__ = [
    "MLFLOW_SECRET_OPTIONAL_KEYS",
    "MLFLOW_SECRET_REQUIRED_KEYS",
    "SETTINGS_CONFIG_MAP_KEYS",
    "STEPS",
    "ClusterSection",
    "ResourcesSection",
    "StepResources",
    "Toleration",
    "check_kubernetes_name",
    "parse_quantity",
]
