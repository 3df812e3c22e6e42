"""Teachers: the models Students are distilled from, behind one small interface (`Teacher`).

- `MiniLMTeacher`: pretrained all-MiniLM-L6-v2 embeddings (frozen) + a logistic-regression head.
- `CausalLMTeacher`: any Hugging Face causal LM (folder or GGUF), top-k logits per token.
- `SafetensorsTeacher`: a user's classifier as safetensors + JSON; `MLflowTeacher`: an MLflow model URI.
- `make_teacher(spec)`: any of the above from a plain dict.
"""

from matta_core.teachers.base import OUTPUT_KINDS, OutputSpec, Teacher, check_outputs
from matta_core.teachers.causal_lm import CausalLMTeacher
from matta_core.teachers.factory import make_teacher
from matta_core.teachers.head import LinearHead, fit_logistic_head
from matta_core.teachers.minilm import MiniLMEncoder, MiniLMTeacher
from matta_core.teachers.user_model import MLflowTeacher, SafetensorsTeacher

__all__ = [
    "OUTPUT_KINDS",
    "CausalLMTeacher",
    "LinearHead",
    "MLflowTeacher",
    "MiniLMEncoder",
    "MiniLMTeacher",
    "OutputSpec",
    "SafetensorsTeacher",
    "Teacher",
    "check_outputs",
    "fit_logistic_head",
    "make_teacher",
]
