"""Session fixtures: infra/ copied and rendered once (every test reads the same rendering)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra.render import KUSTOMIZATIONS, copy_infra, documents, kustomize


@pytest.fixture(scope="session")
def infra_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_infra(tmp_path_factory.mktemp("infra") / "infra")


@pytest.fixture(scope="session")
def rendered_text(infra_copy: Path) -> dict[str, str]:
    """kustomization (relative to infra/) -> its rendered YAML."""
    return {name: kustomize(infra_copy / name) for name in KUSTOMIZATIONS}


@pytest.fixture(scope="session")
def rendered(rendered_text: dict[str, str]) -> dict[str, list[dict]]:
    """kustomization (relative to infra/) -> its rendered objects."""
    return {name: documents(text) for name, text in rendered_text.items()}
