"""What a pipeline task process imports before and during its work: only what its step uses.

Every task is a fresh process (a pod on a cluster) and pays its imports again, where the plain-function run
(`matta_core.workflow`) pays them once. These tests start a fresh interpreter, as a task does, and check that the
run config, the steps package and a task's start import no torch (~1.2 s per process), so the tasks that never use
it (prepare, report, release) do not pay for it, and that loading a model (the evaluation task loads one per width)
does not import torch's compiler (~1 s), which a random initialisation on the meta device would.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_fresh(code: str) -> None:
    """Run `code` in a new interpreter from the repository root; fail with its stderr."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_a_task_start_and_its_config_sections_import_no_torch() -> None:
    run_fresh("""
        import sys
        from matta_core.config import DataSection, ReleaseSection, TeacherSection, TrainSection
        from matta_core.steps import tracked
        import matta_core.evaluation, matta_core.steps.evaluate_all, matta_core.families.classifier.prepare_step
        import matta_core.families.classifier.report_step, matta_core.training

        tracked.start_task("", "", "")
        tracked.load_section(DataSection, '{"limit_train_rows": 100}', "data")
        tracked.load_section(TeacherSection, "{}", "teacher")
        tracked.load_section(TrainSection, '{"epochs": 2, "loss": {"temperature": 2.0}}', "train")
        tracked.load_section(ReleaseSection, '{"enabled": false}', "release")
        tracked.load_model_section("classification", '{"hidden_widths": [256]}')
        heavy = sorted({"torch", "sklearn", "mlflow", "transformers"} & set(sys.modules))
        assert not heavy, f"imported {heavy}"
    """)


def test_a_release_task_that_skips_imports_neither_torch_nor_pandas(tmp_path: Path) -> None:
    run_fresh(f"""
        import sys
        from matta_core.config import DataSection, ReleaseSection
        from matta_core.steps import tracked

        tracking = tracked.start_task("", "", "")
        metrics = tracked.release([], [], "", None, "", DataSection(), ReleaseSection(enabled=False),
                                  {str(tmp_path / "release")!r}, tracking)
        assert metrics["skipped"] == 1.0, metrics
        heavy = sorted({{"torch", "pandas", "sklearn", "mlflow"}} & set(sys.modules))
        assert not heavy, f"imported {{heavy}}"
    """)
    assert (tmp_path / "release" / "release.json").is_file()


def test_building_cutting_and_loading_models_does_not_import_torchs_compiler(tmp_path: Path) -> None:
    run_fresh(f"""
        import sys
        from matta_core.families.classifier.extract import extract, extracted_config, load_extracted, save_extracted
        from matta_core.families.classifier.config import ClassifierConfig
        from matta_core.families.classifier.model import NestedClassifier
        from matta_core.families.classifier.model_io import load_nested, save_nested

        config = ClassifierConfig(num_classes=3, hidden_widths=(16,), student_widths=(8,), embed_dim=4,
                                  features={{"num_buckets": 64}})
        save_nested(NestedClassifier(config), {str(tmp_path / "nested")!r})
        nested = load_nested({str(tmp_path / "nested")!r})
        save_extracted(extract(nested, (8,)), extracted_config(config, (8,)), {str(tmp_path / "8")!r})
        load_extracted({str(tmp_path / "8")!r})
        assert "torch._dynamo" not in sys.modules
    """)
