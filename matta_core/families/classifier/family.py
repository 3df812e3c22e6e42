"""The classifier family (``task: classification``) as the pipeline calls it: `FAMILY`, a `ModelFamily`.

Each step method runs one step module of this folder (``*_step.py``), opens its child run under the pipeline's
parent run when tracking is on, logs params, metrics, lineage tags and models there (models as pickle-free text-in
pyfuncs), and returns the step's scalar metrics. Step modules are imported when called: this module is read by
every task process and imports no torch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matta_core.artifacts.layout import TRAIN_RESULT
from matta_core.families.classifier import section
from matta_core.families.classifier.section import ModelSection
from matta_core.tracking.step_records import (
    Tracking,
    arm_metrics,
    arm_runs,
    lineage,
    log_step,
    numbers,
    parse_widths,
    widths_label,
)

if TYPE_CHECKING:
    from matta_core.data.section import DataSection
    from matta_core.families.classifier.extract import ExtractedConfig
    from matta_core.release.rows import EvalRows
    from matta_core.sections import ExtractionSection, TeacherSection, TrainSection

#: Texts logged as each model's MLflow input example (MLflow also predicts on them before logging).
INPUT_EXAMPLE_ROWS = 3


class ClassifierFamily:
    """Text classification: a hashed n-gram bag embedding and a nested MLP head, distilled from class logits."""

    task = "classification"
    section = ModelSection
    dataset_kind = "classification"
    teacher_output = "class_logits"
    source_formats = "CSV/JSONL/Parquet"
    widths_form = "whole numbers separated by commas"
    evaluation_reads_teacher = False
    release_skip_reason: str | None = None
    reads_extraction_section = True  # int8 / trained-rows-only embedding tables (families/classifier/compact.py)
    trains_every_width = True  # every width's head is a cheap slice of one MLP

    # --- the run config ---------------------------------------------------------------------------------------

    def config_defaults(self, data: dict[str, Any]) -> dict[str, Any]:
        return data  # the run config's field defaults are the classifier's

    def check_data(self, data: DataSection) -> None:
        return None  # any registered classification data set or table file; the prepare step checks the rest

    def check_model(self, model: Any, teacher: TeacherSection | None) -> None:
        return None

    def resolve_widths(self, model: Any, widths: Any) -> list[Any]:
        return section.resolve_widths(widths)

    def check_widths(self, model: Any, widths: list[Any]) -> None:
        section.check_widths(model, widths)

    def parse_widths(self, widths: Sequence[Any]) -> list[int]:
        return parse_widths(widths)

    def parse_widths_text(self, text: str) -> list[int]:
        return [int(part) for part in text.split(",")]

    def widths_label(self, widths: Sequence[Any]) -> str:
        return widths_label(parse_widths(widths))

    # --- the steps --------------------------------------------------------------------------------------------

    def prepare(self, data: DataSection, out_dir: str, tracking: Tracking) -> dict[str, float]:
        """Step 1: validate, dedupe and split the data; log row counts and the data's content hash."""
        from matta_core import storage
        from matta_core.data.summary import quarantine_line
        from matta_core.families.classifier.prepare_step import prepare_step

        with tracking.step("prepare") as run_id:
            manifest = prepare_step(data, out_dir)
            metrics = {f"rows_{split}": float(rows) for split, rows in manifest.row_counts.items()}
            # Every reason, zeros included, so runs line up column by column in MLflow's run table.
            metrics["rows_quarantined"] = float(manifest.quarantine["rows"])
            metrics.update({f"quarantined_{r}": float(n) for r, n in manifest.quarantine["counts"].items()})
            metrics["num_labels"] = float(len(manifest.label_map))
            metrics["data_warnings"] = float(len(manifest.warnings))
            if run_id is not None:
                params: dict[str, Any] = {
                    "data": data.model_dump(),
                    "quarantine": {"file": storage.join(out_dir, manifest.quarantine["path"]),
                                   "summary": quarantine_line(manifest, out_dir)},
                }
                if manifest.warnings:
                    params["warning"] = {w["code"]: w["message"] for w in manifest.warnings}
                log_step(run_id, params, metrics)
                lineage(run_id, tracking, data_content_hash=manifest.content_hash)
        return metrics

    def teacher(self, prepared_dir: str, out_dir: str, teacher: TeacherSection, data: DataSection, cache_dir: str,
                tracking: Tracking, *, progress: bool = False) -> dict[str, float]:
        """Step 2: the Teacher's class logits on every split, through the content-addressed cache."""
        from matta_core.families.classifier.teacher_step import teacher_step

        with tracking.step("teacher") as run_id:
            info = teacher_step(prepared_dir, out_dir, teacher, data, cache_dir, progress=progress)
            metrics: dict[str, float] = {}
            for split, record in info["splits"].items():
                if record["accuracy"] is not None:
                    metrics[f"teacher_accuracy_{split}"] = float(record["accuracy"])
                cache = record.get("cache", {})
                for key in ("hits", "misses"):
                    if isinstance(cache.get(key), int | float):
                        metrics[f"cache_{key}_{split}"] = float(cache[key])
            if run_id is not None:
                log_step(run_id, {"teacher": teacher.model_dump(), "cache_dir": cache_dir}, metrics)
                lineage(run_id, tracking, data_content_hash=info["data_content_hash"],
                        teacher_cache_key=info["cache_key"], teacher_fingerprint=info["fingerprint"])
        return metrics

    def train(self, prepared_dir: str, teacher_dir: str, out_dir: str, model: Any, train: TrainSection,
              data: DataSection, tracking: Tracking, *, progress: bool = False,
              init_from_version: str = "") -> tuple[dict[str, float], list[str]]:
        """Step 3: train the TA+Student (MatTA) and the baselines; the baseline models are logged here, by the step
        that writes them. A warm start (``model.init_from``) is read from the registry of `tracking`'s store (an
        alias as the version `init_from_version` says it named when the run started) and recorded as
        ``init_from.*`` params, as in ``train_result.json`` (the release step reads them)."""
        from matta_core.families.classifier.train_step import train_step

        with tracking.step("train") as run_id:
            with arm_runs(tracking, run_id, teacher_dir) as arm_callbacks:
                summary = train_step(prepared_dir, teacher_dir, out_dir, model, train, data, progress=progress,
                                     arm_callbacks=arm_callbacks, code_version=tracking.code_version or None,
                                     tracking_uri=tracking.tracking_uri or None, init_from_version=init_from_version)
            metrics = {"train_rows": float(summary["train_rows"]), **arm_metrics(summary)}
            baseline_dirs = list(summary["baseline_dirs"].values())
            if run_id is not None:
                params: dict[str, Any] = {"model": model.model_dump(), "train": train.model_dump()}
                if summary["warnings"]:  # e.g. a batch larger than the data (train_step prints them too)
                    params["warning"] = {w["code"]: w["message"] for w in summary["warnings"]}
                if summary["init_from"] is not None:  # what the nested model started from, version pinned
                    params["init_from"] = {k: v for k, v in summary["init_from"].items() if v is not None}
                log_step(run_id, params, metrics)
                lineage(run_id, tracking, data_content_hash=summary["data_content_hash"],
                        teacher_cache_key=summary["teacher_cache_key"])
                examples = self.example_texts(prepared_dir, data)
                for sub in baseline_dirs:
                    _log_model(str(Path(out_dir) / sub), self.model_name(str(Path(out_dir) / sub)), examples)
        return metrics, baseline_dirs

    def pin_init_from(self, model: Any, tracking_uri: str) -> str:
        if model.init_from is None:
            return ""
        from matta_core.families.classifier.warm_start import pin_init_from

        return pin_init_from(model.init_from, tracking_uri or None)

    def extract(self, trained_dir: str, widths: Sequence[Any], out_dir: str, prepared_dir: str, data: DataSection,
                tracking: Tracking, extraction: ExtractionSection | None = None) -> dict[str, float]:
        """Step 4: cut one standalone model out of the nested one (parity-checked); log it as an MLflow model."""
        from matta_core.families.classifier.extract_step import extract_step

        parsed = parse_widths(widths)
        with tracking.step(f"extract-{widths_label(parsed)}") as run_id:
            result = extract_step(trained_dir, parsed, out_dir, prepared_dir, data, extraction)
            metrics = {"parity_max_abs_diff": float(result["parity_max_abs_diff"])}
            cost = result["compression"]
            if "validation_accuracy_served" in cost:  # what storing it compactly cost, on the validation split
                metrics["compression_validation_accuracy_change"] = (cost["validation_accuracy_served"]
                                                                     - cost["validation_accuracy_float32"])
                metrics["compression_max_abs_logit_change"] = cost["max_abs_logit_change"]
            if run_id is not None:
                summary = json.loads((Path(trained_dir) / TRAIN_RESULT).read_text())
                log_step(run_id, {"widths": parsed, "name": result["name"]}, metrics)
                lineage(run_id, tracking, data_content_hash=summary["data_content_hash"],
                        teacher_cache_key=summary.get("teacher_cache_key"), widths=parsed)
                _log_model(out_dir, result["name"], self.example_texts(prepared_dir, data))
        return metrics

    def evaluate(self, model_dir: str, prepared_dir: str, teacher_dir: str | None, out_dir: str, data: DataSection,
                 measure_speed: bool, tracking: Tracking) -> dict[str, float]:
        """Step 5: accuracy, macro-F1, calibration and serving cost of one standalone model on the test split."""
        from matta_core.families.classifier.evaluate_step import evaluate_step

        config = _saved_config(model_dir)  # the config alone: evaluate_step loads the weights
        name = str(config.metadata.get("name", widths_label(config.hidden_widths)))
        with tracking.step(f"evaluate-{name}") as run_id:
            record = evaluate_step(model_dir, prepared_dir, out_dir, data, measure_speed=measure_speed)
            metrics = numbers(record)
            if run_id is not None:
                log_step(run_id, {"name": name, "arm": record["arm"], "measure_speed": measure_speed}, metrics)
                lineage(run_id, tracking, data_content_hash=config.metadata.get("data_content_hash"),
                        teacher_cache_key=config.metadata.get("teacher_cache_key"),
                        widths=list(config.hidden_widths))
        return metrics

    def report(self, evaluations: Sequence[Mapping[str, Any]], teacher_dir: str | None, out_dir: str, *,
               prepared_dir: str | None = None, trained_dir: str | None = None) -> dict[str, Any]:
        """Step 6: the accuracy-vs-cost report; with the prepare and train folders, its header also shows the
        quarantined rows per reason and every data and training warning."""
        from matta_core.families.classifier.report_step import report_step

        return report_step([dict(e) for e in evaluations], teacher_dir, out_dir, prepared_dir=prepared_dir,
                           trained_dir=trained_dir)

    def report_metrics(self, report: Mapping[str, Any]) -> dict[str, float]:
        """``accuracy/<model>`` for every model in a report, plus the Teacher's when known."""
        metrics = {f"accuracy/{r['name']}": float(r["accuracy"]) for r in report["models"]}
        teacher_accuracy = report.get("teacher", {}).get("test_accuracy")
        if teacher_accuracy is not None:
            metrics["accuracy/teacher"] = float(teacher_accuracy)
        return metrics

    def model_name(self, model_dir: str) -> str:
        """The width name a saved model's config records (what its evaluation record is called)."""
        config = _saved_config(model_dir)
        return str(config.metadata.get("name", widths_label(config.hidden_widths)))

    def eval_rows(self, prepared_dir: str, data: DataSection) -> EvalRows:
        """The test split of a prepared folder, row-limited as `data` says, as the steps read it."""
        from matta_core.families.classifier.inputs import eval_rows

        return eval_rows(prepared_dir, data)

    def example_texts(self, prepared_dir: str, data: DataSection) -> list[str]:
        from matta_core.families.classifier.inputs import load_inputs

        return load_inputs(prepared_dir, data).splits["validation"].texts[:INPUT_EXAMPLE_ROWS]



def _saved_config(model_dir: str) -> ExtractedConfig:
    """A saved standalone model's config.json, without its weights."""
    from matta_core.families.classifier.extract import CONFIG_FILE, ExtractedConfig

    path = Path(model_dir) / CONFIG_FILE
    return ExtractedConfig.from_dict(json.loads(path.read_text()), source=str(path))


def _log_model(model_dir: str, name: str, examples: Sequence[str]) -> str:
    """Log the saved model as a pickle-free pyfunc into the active (step) run."""
    from matta_core.tracking import log_standalone_model

    return log_standalone_model(model_dir, name, input_example_texts=examples)


FAMILY = ClassifierFamily()
