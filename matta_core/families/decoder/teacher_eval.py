"""The Teacher's own row in an LM benchmark: the causal-LM Teacher scored on the same ids, by the same code.

The Teacher cache keeps only top-k logits, which cannot give an exact perplexity (the true token may be outside
the top k, and the softmax needs every logit), so this runs the Hugging Face model for full logits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from matta_core.families.decoder.cloze import ClozeExample, ClozeSet, build_cloze_examples
from matta_core.families.decoder.evaluate import evaluate_lm
from matta_core.families.decoder.tokens import encode_texts
from matta_core.families.decoder.wrappers import HFCausalLMLogits
from matta_core.teachers.causal_lm import CausalLMTeacher


def teacher_ids(teacher: CausalLMTeacher, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids [n, max_length], lengths [n]) as the Teacher's cache would hold them, from the tokenizer alone."""
    return encode_texts(
        teacher.load_tokenizer(), texts, max_length=teacher.max_length, add_special_tokens=teacher.add_special_tokens
    )


def teacher_cloze_examples(teacher: CausalLMTeacher, texts: Iterable[str], *, min_words: int = 5) -> ClozeSet:
    """Cloze examples tokenised as the Teacher (and so its Students) read text, capped at its `max_length`."""
    return build_cloze_examples(
        texts,
        teacher.load_tokenizer(),
        min_words=min_words,
        max_length=teacher.max_length,
        add_special_tokens=teacher.add_special_tokens,
    )


def evaluate_teacher_lm(
    teacher: CausalLMTeacher,
    *,
    input_ids: torch.Tensor | np.ndarray,
    lengths: torch.Tensor | np.ndarray,
    cloze_examples: Iterable[ClozeExample] | None = None,
    batch_size: int = 8,
    measure_speed: bool = False,
    **kwargs: Any,
) -> dict[str, Any]:
    """`evaluate_lm` for the Teacher's HF model (loaded once; ~30 s for SmolLM2-135M on CPU): the same keys, with
    `params` the Teacher's and `flops_per_token` from the Llama formula. Speed is off by default: it is slow."""
    _, model = teacher.load_model()
    return evaluate_lm(
        HFCausalLMLogits(model),
        input_ids=input_ids,
        lengths=lengths,
        cloze_examples=cloze_examples,
        batch_size=batch_size,
        measure_speed=measure_speed,
        **kwargs,
    )
