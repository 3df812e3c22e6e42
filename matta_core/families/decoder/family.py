"""The decoder family (``task: causal_lm``) as the pipeline calls it: `FAMILY`, a `ModelFamily`.

The same run tree as the classifier's: each step method runs one step module of this folder (``*_step.py``), logs
params, metrics, lineage tags and models in its child run, and returns the step's scalar metrics. Models are logged
as LoggedModels of their files (`log_model_folder`): a decoder reads token ids, so the classifier's text-in pyfunc
does not fit it. Step modules are imported when called: this module imports no torch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matta_core.config_base import ConfigError
from matta_core.families.decoder import section
from matta_core.families.decoder.section import DecoderSection
from matta_core.tracking.step_records import Tracking, arm_metrics, arm_runs, lineage, log_step, numbers, parse_widths

if TYPE_CHECKING:
    from matta_core.data.section import DataSection
    from matta_core.release.rows import EvalRows
    from matta_core.sections import ExtractionSection, TeacherSection, TrainSection

#: The MLflow `model_type` of logged decoders.
DECODER_MODEL_TYPE = "matta.standalone_decoder"

RELEASE_SKIP_REASON = (
    "task is causal_lm: the release gate (accuracy floors, paired bootstrap on labelled test rows, a text-in "
    "pyfunc loadability check) is the classifier's, so no language model was gated or registered. The extracted "
    "decoders are logged in MLflow as models of the extract steps; set release.enabled: false to silence this."
)


def parse_decoder_widths(widths: Sequence[Any]) -> list[list[int]]:
    """Per-block [ffn_width, n_heads] pairs from a pipeline parameter (KFP hands numbers over as floats)."""
    if isinstance(widths, str) or not all(isinstance(p, Sequence) and not isinstance(p, str) for p in widths):
        raise ConfigError(f"widths {widths!r}: task causal_lm takes one [ffn_width, n_heads] pair per block")
    pairs = [parse_widths(pair) for pair in widths]
    if not pairs or any(len(pair) != 2 for pair in pairs):
        raise ConfigError(f"widths {widths!r}: task causal_lm takes one [ffn_width, n_heads] pair per block")
    return pairs


class DecoderFamily:
    """Causal language modelling: a nested GPT-2 style decoder, distilled from a causal LM's top-k logits."""

    task = "causal_lm"
    section = DecoderSection
    dataset_kind = "text_corpus"
    teacher_output = "topk_logits"
    source_formats = "TXT/JSONL"
    widths_form = "ffn:heads pairs separated by commas (512:4,128:2)"
    evaluation_reads_teacher = True
    release_skip_reason: str | None = RELEASE_SKIP_REASON
    reads_extraction_section = False  # its Hugging Face export is written as trained
    trains_every_width = False  # a head per width is a full-vocabulary projection: sampled

    # --- the run config ---------------------------------------------------------------------------------------

    def config_defaults(self, data: dict[str, Any]) -> dict[str, Any]:
        return section.config_defaults(data)

    def check_data(self, data: DataSection) -> None:
        from matta_core.data import DATASETS

        section.check_data(data, sorted(name for name, spec in DATASETS.items() if spec.kind == self.dataset_kind))

    def check_model(self, model: Any, teacher: TeacherSection | None) -> None:
        section.check_model(model, teacher)

    def resolve_widths(self, model: Any, widths: Any) -> list[Any]:
        return section.resolve_widths(model, widths)

    def check_widths(self, model: Any, widths: list[Any]) -> None:
        return None  # each entry was checked as it was resolved

    def parse_widths(self, widths: Sequence[Any]) -> list[list[int]]:
        return parse_decoder_widths(widths)

    def parse_widths_text(self, text: str) -> list[list[int]]:
        blocks = [block.split(":") for block in text.split(",")]
        if any(len(block) != 2 for block in blocks):
            raise ValueError(text)
        return [[int(ffn), int(heads)] for ffn, heads in blocks]

    def widths_label(self, widths: Sequence[Any]) -> str:
        from matta_core.families.decoder.names import decoder_widths_label

        return decoder_widths_label(parse_decoder_widths(widths))

    # --- the steps --------------------------------------------------------------------------------------------

    def prepare(self, data: DataSection, out_dir: str, tracking: Tracking) -> dict[str, float]:
        """Step 1: validate, dedupe and split the text corpus; log passage counts and the data's content hash."""
        from matta_core.families.decoder.prepare_step import lm_prepare_step

        with tracking.step("prepare") as run_id:
            manifest = lm_prepare_step(data, out_dir)
            metrics = {f"rows_{split}": float(rows) for split, rows in manifest["row_counts"].items()}
            metrics["rows_quarantined"] = float(manifest["quarantine"]["rows"])
            metrics["rows_duplicate"] = float(manifest["duplicates"])
            if run_id is not None:
                log_step(run_id, {"task": "causal_lm", "data": data.model_dump()}, metrics)
                lineage(run_id, tracking, data_content_hash=manifest["content_hash"])
        return metrics

    def teacher(self, prepared_dir: str, out_dir: str, teacher: TeacherSection, data: DataSection, cache_dir: str,
                tracking: Tracking, *, progress: bool = False) -> dict[str, float]:
        """Step 2: the Teacher's top-k logits on every split through the cache, its cloze examples and scores."""
        from matta_core.families.decoder.teacher_step import lm_teacher_step

        with tracking.step("teacher") as run_id:
            info = lm_teacher_step(prepared_dir, out_dir, teacher, data, cache_dir, progress=progress)
            metrics: dict[str, float] = {"vocab_size": float(info["vocab_size"])}
            for split, record in info["splits"].items():
                metrics[f"tokens_{split}"] = float(record["tokens"])
                cache = record.get("cache", {})
                for key in ("hits", "misses"):
                    if isinstance(cache.get(key), int | float):
                        metrics[f"cache_{key}_{split}"] = float(cache[key])
            metrics.update({f"teacher_{k}": v for k, v in numbers(info["evaluation"]).items()
                            if k in ("test_perplexity", "test_nll", "cloze_accuracy", "params", "flops_per_token")})
            metrics["cloze_examples"] = float(info["cloze"]["examples"])
            if run_id is not None:
                log_step(run_id, {"task": "causal_lm", "teacher": teacher.model_dump(), "cache_dir": cache_dir},
                         metrics)
                lineage(run_id, tracking, data_content_hash=info["data_content_hash"],
                        teacher_cache_key=info["cache_key"], teacher_fingerprint=info["fingerprint"])
        return metrics

    def train(self, prepared_dir: str, teacher_dir: str, out_dir: str, model: Any, train: TrainSection,
              data: DataSection, tracking: Tracking, *, progress: bool = False,
              init_from_version: str = "") -> tuple[dict[str, float], list[str]]:
        """Step 3: train the nested decoder (MatTA) and the baselines; the baseline decoders are logged here. A
        decoder has no warm start: `init_from_version` is always ""."""
        from matta_core.families.decoder.train_step import lm_train_step

        with tracking.step("train") as run_id:
            with arm_runs(tracking, run_id, teacher_dir) as arm_callbacks:
                summary = lm_train_step(prepared_dir, teacher_dir, out_dir, model, train, data, progress=progress,
                                        arm_callbacks=arm_callbacks, code_version=tracking.code_version or None)
            metrics = {"train_rows": float(summary["train_rows"]), "train_tokens": float(summary["train_tokens"]),
                       **arm_metrics(summary)}
            baseline_dirs = list(summary["baseline_dirs"].values())
            if run_id is not None:
                log_step(run_id, {"task": "causal_lm", "model": model.model_dump(), "train": train.model_dump()},
                         metrics)
                lineage(run_id, tracking, data_content_hash=summary["data_content_hash"],
                        teacher_cache_key=summary["teacher_cache_key"])
                for sub in baseline_dirs:
                    _log_decoder(str(Path(out_dir) / sub))
        return metrics, baseline_dirs

    def pin_init_from(self, model: Any, tracking_uri: str) -> str:
        return ""  # the decoder's model section has no init_from

    def extract(self, trained_dir: str, widths: Sequence[Any], out_dir: str, prepared_dir: str, data: DataSection,
                tracking: Tracking, extraction: ExtractionSection | None = None) -> dict[str, float]:
        """Step 4: cut one standalone decoder out of the nested one (parity-checked); log it as an MLflow model."""
        from matta_core.families.decoder.extract_step import lm_extract_step
        from matta_core.families.decoder.names import decoder_widths_label

        pairs = parse_decoder_widths(widths)
        with tracking.step(f"extract-{decoder_widths_label(pairs)}") as run_id:
            result = lm_extract_step(trained_dir, pairs, out_dir)
            metrics = {"parity_max_abs_diff": float(result["parity_max_abs_diff"])}
            if run_id is not None:
                log_step(run_id, {"widths": pairs, "name": result["name"]}, metrics)
                _decoder_lineage(run_id, tracking, out_dir)
                _log_decoder(out_dir)
        return metrics

    def evaluate(self, model_dir: str, prepared_dir: str, teacher_dir: str | None, out_dir: str, data: DataSection,
                 measure_speed: bool, tracking: Tracking) -> dict[str, float]:
        """Step 5: perplexity, cloze accuracy and serving cost of one standalone decoder on the Teacher's test ids
        (so `teacher_dir`, the Teacher step's folder, is required)."""
        from matta_core.families.decoder.evaluate_step import lm_evaluate_step

        if not teacher_dir:
            raise ConfigError("evaluating a causal_lm model needs the Teacher step's folder (its test token ids and "
                              "cloze examples): pass the teacher input (matta component evaluate --teacher DIR)")
        name = self.model_name(model_dir)
        with tracking.step(f"evaluate-{name}") as run_id:
            record = lm_evaluate_step(model_dir, teacher_dir, out_dir, measure_speed=measure_speed)
            metrics = numbers(record)
            if run_id is not None:
                log_step(run_id, {"name": name, "arm": record["arm"], "measure_speed": measure_speed}, metrics)
                _decoder_lineage(run_id, tracking, model_dir)
        return metrics

    def report(self, evaluations: Sequence[Mapping[str, Any]], teacher_dir: str | None, out_dir: str, *,
               prepared_dir: str | None = None, trained_dir: str | None = None) -> dict[str, Any]:
        """Step 6: the perplexity-vs-cost report."""
        from matta_core.families.decoder.report_step import lm_report_step

        return lm_report_step([dict(e) for e in evaluations], teacher_dir, out_dir)

    def report_metrics(self, report: Mapping[str, Any]) -> dict[str, float]:
        """``perplexity/<model>`` and ``cloze_accuracy/<model>`` for every model, the Teacher's too when known."""
        rows = [*report["models"], {**report.get("teacher", {}), "name": "teacher"}]
        metrics = {}
        for row in rows:
            for key, prefix in (("test_perplexity", "perplexity"), ("cloze_accuracy", "cloze_accuracy")):
                if row.get(key) is not None:
                    metrics[f"{prefix}/{row['name']}"] = float(row[key])
        return metrics

    def model_name(self, model_dir: str) -> str:
        return str(_decoder_config(model_dir)["metadata"].get("name", Path(model_dir).name))

    def eval_rows(self, prepared_dir: str, data: DataSection) -> EvalRows:
        raise ConfigError(self.release_skip_reason)

    def example_texts(self, prepared_dir: str, data: DataSection) -> list[str]:
        return []  # decoders are logged as folders of files, without an input example



def _decoder_config(model_dir: str) -> dict[str, Any]:
    """A saved decoder's config.json (its metadata holds name, arm, widths and lineage), without its weights."""
    from matta_core.families.decoder.standalone import CONFIG_FILE

    return dict(json.loads((Path(model_dir) / CONFIG_FILE).read_text()))


def _decoder_lineage(run_id: str, tracking: Tracking, model_dir: str) -> None:
    from matta_core.tracking import tags as T

    config = _decoder_config(model_dir)
    meta = config["metadata"]
    widths = list(zip(config["ffn_widths"], config["heads"], strict=True))
    lineage(run_id, tracking, data_content_hash=meta.get("data_content_hash"),
            teacher_cache_key=meta.get("teacher_cache_key"), extra={T.MODEL_WIDTHS: T.decoder_widths_value(widths)})


def _log_decoder(model_dir: str) -> str:
    """Log the saved decoder folder as a LoggedModel of the active (step) run, tagged like its run."""
    from matta_core.tracking import log_model_folder
    from matta_core.tracking import tags as T

    config = _decoder_config(model_dir)
    meta = config["metadata"]
    widths = list(zip(config["ffn_widths"], config["heads"], strict=True))
    tags = {T.MODEL_WIDTHS: T.decoder_widths_value(widths), T.DATA_CONTENT_HASH: meta.get("data_content_hash"),
            T.TEACHER_CACHE_KEY: meta.get("teacher_cache_key")}
    params = {"arm": meta.get("arm", "matta"), "vocab_size": config["vocab_size"], "d_model": config["d_model"]}
    return log_model_folder(model_dir, str(meta.get("name", Path(model_dir).name)), model_type=DECODER_MODEL_TYPE,
                            tags={k: v for k, v in tags.items() if v is not None}, params=params)


FAMILY = DecoderFamily()
