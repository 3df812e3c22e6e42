"""File names inside each step's output folder: the artifact contract between steps, in one place."""

# teacher_step
TEACHER_INFO = "teacher.json"
TEACHER_MODEL_DIR = "model"
TEACHER_OUTPUTS = "{split}.safetensors"
# teacher_step, causal_lm: the test split's last-word cloze examples (the Teacher's tokenisation)
CLOZE_TEST = "cloze_test.json"

# train_step
NESTED_DIR = "nested"
NESTED_WEIGHTS = "model.safetensors"
NESTED_CONFIG = "model_config.json"
TRAIN_RESULT = "train_result.json"
CHECKPOINTS_DIR = "checkpoints"
BASELINES_DIR = "baselines"
METRICS_LOG = "metrics.jsonl"

# extract_step: the folder is a saved standalone model (model.safetensors + config.json), plus:
PARITY = "parity.json"

# evaluate_step
EVALUATION = "evaluation.json"

# report_step
REPORT_MD = "report.md"
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
PARETO_PNG = "pareto.png"

# release (tracked.release; `matta_core.release.step` writes gate_decisions.json and <class>/ab_handoff.json + .md)
RELEASE_SUMMARY = "release.json"
GATE_REPORT = "gate_report.md"  # the name `matta_core.release.step` gives it (REPORT_FILE)
