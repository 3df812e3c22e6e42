"""The pipeline's steps for ``task: causal_lm``, as plain functions over artifact folders (the classifier's are in
`matta_core.steps`; `matta_core.steps.tracked` dispatches on the task). Same folders, same file names where the
artifact is the same kind (`matta_core.steps.layout`):

    lm_prepare_step   text corpus -> prepared/ train|validation|test.jsonl + manifest.json
    lm_teacher_step   prepared -> teacher/ <split>.safetensors (ids + top-k logits), cloze_test.json, teacher.json
    lm_train_step     teacher outputs -> trained/ nested/ (NestedDecoder), baselines/<arm>/, train_result.json
    lm_extract_step   trained -> one StandaloneDecoder folder per width (parity-checked)
    lm_evaluate_step  decoder + teacher's test ids -> evaluation.json (perplexity, cloze, params, FLOPs, speed)
    lm_report_step    evaluations + teacher.json -> report.md/html/json + pareto.png (perplexity vs params)
"""

from matta_core.steps.lm.evaluate import lm_evaluate_step
from matta_core.steps.lm.extract import lm_extract_step
from matta_core.steps.lm.prepare import lm_prepare_step
from matta_core.steps.lm.report import lm_report_step
from matta_core.steps.lm.teacher import lm_teacher_step
from matta_core.steps.lm.train import lm_train_step

__all__ = [
    "lm_evaluate_step",
    "lm_extract_step",
    "lm_prepare_step",
    "lm_report_step",
    "lm_teacher_step",
    "lm_train_step",
]
