"""Step 5 for ``task: causal_lm``: evaluate one standalone decoder on the test split: quality and serving cost.

The test ids are the ones the Teacher read (its cached ``test.safetensors``), and the cloze examples the ones its
step built: every model, Teacher included, is scored on exactly the same tokens.
"""

from __future__ import annotations

from typing import Any

from matta_core.artifacts.evaluation import write_evaluation
from matta_core.families.decoder.evaluate import evaluate_lm
from matta_core.families.decoder.names import decoder_widths_label
from matta_core.families.decoder.standalone import StandaloneDecoder
from matta_core.families.decoder.teacher_step import load_cloze_examples, load_token_outputs


def lm_evaluate_step(
    model_dir: str, teacher_dir: str, out_dir: str, measure_speed: bool = True, split: str = "test"
) -> dict[str, Any]:
    """Write `evaluation.json` (`evaluate_lm`'s record: perplexity, cloze accuracy, params, FLOPs/token, latency,
    tokens/s; plus name, arm and lineage) for the decoder in `model_dir`."""
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
    }
    return write_evaluation(out_dir, measured, config.metadata, model_dir, split)
