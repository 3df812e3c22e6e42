"""Step 5 for ``task: causal_lm``: evaluate one standalone decoder on the test split: quality and serving cost.

The test ids are the ones the Teacher read (its cached ``test.safetensors``), and the cloze examples the ones its
step built: every model, Teacher included, is scored on exactly the same tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matta_core.artifacts.evaluation import write_evaluation
from matta_core.evaluation.memory import folder_bytes, resident_bytes, weight_bytes
from matta_core.families.decoder import standalone
from matta_core.families.decoder.evaluate import evaluate_lm
from matta_core.families.decoder.names import decoder_widths_label
from matta_core.families.decoder.standalone import StandaloneDecoder
from matta_core.families.decoder.teacher_step import load_cloze_examples, load_token_outputs

#: What `decoder_resident_bytes` runs in its child process (`matta_core.evaluation.memory.resident_bytes`): the
#: servable decoder file's own loader and one next-token prediction; a toy decoder of the same file predicts first,
#: so torch's one-off kernel set-up is not charged to the model measured.
RESIDENT_PROBE = """
import torch

def _predict_one(model):
    with torch.inference_mode():
        model(torch.zeros(1, 1, dtype=torch.long))

def warmup(module):
    toy = module.StandaloneDecoderConfig(vocab_size=8, n_positions=4, d_model=4, head_dim=2, ffn_widths=(4,),
                                         heads=(2,))
    _predict_one(module.StandaloneDecoder(toy).eval())

def run(module, folder):
    model = module.StandaloneDecoder.load(folder)
    _predict_one(model)
    return model
"""


def decoder_resident_bytes(model_dir: str | Path) -> int:
    """Resident memory (bytes) the decoder saved in `model_dir` adds to a fresh process that serves it with the
    servable file alone (`matta_core.families.decoder.standalone`, imported by path, torch and safetensors only)."""
    return resident_bytes(standalone.__file__, model_dir, RESIDENT_PROBE)


def lm_evaluate_step(
    model_dir: str, teacher_dir: str, out_dir: str, measure_speed: bool = True, split: str = "test"
) -> dict[str, Any]:
    """Write `evaluation.json` (`evaluate_lm`'s record: perplexity, cloze accuracy, params, FLOPs/token, latency,
    tokens/s; plus bytes on disk, of the weights and, with `measure_speed`, resident in a serving process; name, arm
    and lineage) for the decoder in `model_dir`."""
    model = StandaloneDecoder.load(model_dir)
    config = model.config
    tokens = load_token_outputs(teacher_dir, split)
    cloze = load_cloze_examples(teacher_dir) if split == "test" else []
    record = evaluate_lm(
        model,
        input_ids=tokens["input_ids"],
        lengths=tokens["lengths"],
        cloze_examples=cloze or None,
        measure_speed=measure_speed,
    )
    widths = [[f, h] for f, h in zip(config.ffn_widths, config.heads, strict=True)]
    measured = {
        **record,
        "name": str(config.metadata.get("name", decoder_widths_label(widths))),
        "widths": widths,
        "vocab_size": config.vocab_size,
        # The same byte keys as a classifier's record, so a size class's byte budgets mean the same for both;
        # resident memory, like latency, only when speed is measured (a child process, a few seconds).
        "weight_bytes": weight_bytes(model),
        "bytes_on_disk": folder_bytes(model_dir),
        "resident_bytes": decoder_resident_bytes(model_dir) if measure_speed else None,
    }
    return write_evaluation(out_dir, measured, config.metadata, model_dir, split)
