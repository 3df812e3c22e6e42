"""The Pareto chart: a real PNG from evaluations or plain records, with reference lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from matta_core.evaluation.plots import pareto_chart
from matta_core.families.classifier.evaluate import evaluate_widths, mark_pareto

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_chart_of_evaluations_is_a_png(tiny_nested, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    model, features, labels = tiny_nested
    evaluations = evaluate_widths(model, [(24, 16), (8, 8), (12, 4)], features, labels, measure_speed=False)
    mark_pareto(evaluations)
    path = pareto_chart(
        evaluations, tmp_path / "charts" / "pareto.png", reference_lines={"Teacher": 0.93}, title="tiny"
    )
    assert path == tmp_path / "charts" / "pareto.png"
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5_000


def test_chart_of_records_by_params_on_a_log_scale(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    records = [{"name": f"w{w}", "params": 1000 * w, "accuracy": 0.5 + w / 4000} for w in (32, 64, 256, 1024)]
    path = pareto_chart(records, tmp_path / "p.png", cost="params")
    assert path.read_bytes().startswith(PNG_MAGIC)


def test_chart_rejects_nothing_to_plot_and_unknown_keys(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    with pytest.raises(ValueError, match="no evaluations"):
        pareto_chart([], tmp_path / "p.png")
    with pytest.raises(KeyError, match="no 'latency'"):
        pareto_chart([{"name": "a", "accuracy": 0.5}], tmp_path / "p.png", cost="latency")
    assert not (tmp_path / "p.png").exists()
