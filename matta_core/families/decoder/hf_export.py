"""Export a standalone decoder as a Hugging Face `GPT2LMHeadModel` folder (`config.json` + `model.safetensors`).

What maps, one to one:
- token / position embeddings -> `transformer.wte` / `transformer.wpe`; the tied LM head stays tied
  (`tie_word_embeddings`, no `lm_head.weight` stored); pre-LN blocks and the final LN -> `h.<i>.ln_1/ln_2`,
  `ln_f`; `gelu` -> `activation_function: gelu`, `gelu_tanh` -> `gelu_pytorch_tanh`; `layer_norm_eps`.
- Linear layers -> GPT-2's `Conv1D`, which stores weights transposed (in, out); the fused q;k;v projection ->
  `c_attn` (same q, k, v order), attention output -> `attn.c_proj`, FFN -> `mlp.c_fc` / `mlp.c_proj`.
- Attention scaling 1/sqrt(head_dim) -> `scale_attn_weights: true`; all dropouts are written as 0 (inference).

What does not map (refused with `HFExportError` saying which block and why):
- Per-block FFN widths or head counts that differ: `GPT2Config` has one `n_inner` and one `n_head` for all blocks.
- `n_heads * head_dim != d_model`: GPT-2 derives head_dim = n_embd / n_head and its attention projections are
  n_embd wide, so a sub-model with fewer heads than the TA (a sliced head count) has no GPT-2 shape.
`pad=True` exports those anyway as an exact GPT-2: missing heads and FFN units are filled with zeros (a zero value
and output projection contributes exactly nothing), so logits are unchanged but the file and compute are those of
the padded shape, not of the sub-model. It still needs d_model to be a multiple of head_dim.
Nested depth and per-block shapes would need a custom `trust_remote_code` model; serve `StandaloneDecoder` instead.
`LlamaForCausalLM` is no target: it has RMSNorm, rotary positions, a gated (SwiGLU) FFN and no biases, so this
family's weights have no exact Llama form (Llama's free `head_dim` would otherwise have held sliced heads).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from matta_core.families.decoder.standalone import StandaloneDecoder, StandaloneDecoderConfig
from matta_core.storage.atomic import usual_mode

HF_ACTIVATIONS = {"gelu": "gelu", "gelu_tanh": "gelu_pytorch_tanh"}


class HFExportError(ValueError):
    """The decoder's shape has no GPT-2 equivalent; the message says which part and what would be allowed."""


def gpt2_shape_problems(config: StandaloneDecoderConfig) -> list[str]:
    """Why `config` cannot be written as a GPT-2 without padding (empty: it can)."""
    problems = []
    if len(set(config.heads)) > 1:
        problems.append(f"the blocks have different head counts {list(config.heads)}, but GPT2Config has one n_head")
    if len(set(config.ffn_widths)) > 1:
        problems.append(
            f"the blocks have different FFN widths {list(config.ffn_widths)}, but GPT2Config has one n_inner"
        )
    for i, heads in enumerate(config.heads):
        if heads * config.head_dim != config.d_model:
            problems.append(
                f"block {i} has {heads} heads x head_dim {config.head_dim} = {heads * config.head_dim} "
                f"!= d_model {config.d_model}, but GPT-2 requires n_head * head_dim == n_embd"
            )
            break
    return problems


def export_hf_gpt2(
    model: StandaloneDecoder, out_dir: str | Path, *, pad: bool = False, extra_config: dict[str, Any] | None = None
) -> Path:
    """Write `config.json` + `model.safetensors` loadable by `transformers.GPT2LMHeadModel.from_pretrained`.

    `extra_config` adds keys such as `bos_token_id` / `eos_token_id` (the tokenizer's); it may not override the
    shape. Raises `HFExportError` when the shape does not map (see the module docstring) and `pad` is False.
    """
    config = model.config
    problems = gpt2_shape_problems(config)
    if problems and not pad:
        raise HFExportError(
            "cannot export as GPT-2: " + "; ".join(problems) + ". Use pad=True for an exact but full-size GPT-2 "
            "(zero-filled heads/units), or serve the matta StandaloneDecoder"
        )
    if config.d_model % config.head_dim:
        raise HFExportError(
            f"cannot export as GPT-2: d_model {config.d_model} is not a multiple of head_dim "
            f"{config.head_dim}, so no whole number of GPT-2 heads has this head size"
        )
    n_head, n_inner = config.d_model // config.head_dim, max(config.ffn_widths)
    if max(config.heads) > n_head:
        raise HFExportError(
            f"cannot export as GPT-2: {max(config.heads)} heads x head_dim {config.head_dim} is wider "
            f"than d_model {config.d_model}; GPT-2 allows at most {n_head} heads of this size"
        )
    hf_config = {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": config.vocab_size,
        "n_positions": config.n_positions,
        "n_embd": config.d_model,
        "n_layer": config.n_layers,
        "n_head": n_head,
        "n_inner": n_inner,
        "activation_function": HF_ACTIVATIONS[config.activation],
        "layer_norm_epsilon": config.layer_norm_eps,
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "initializer_range": 0.02,
        "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "tie_word_embeddings": True,
        "use_cache": True,
        "dtype": "float32",
        "bos_token_id": None,
        "eos_token_id": None,
    }
    clashes = sorted(set(extra_config or {}) & (set(hf_config) - {"bos_token_id", "eos_token_id"}))
    if clashes:
        raise HFExportError(f"extra_config may not override the exported shape/settings {clashes}")
    hf_config.update(extra_config or {})
    state = _gpt2_state(model, n_head, n_inner)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = out_dir / ".model.safetensors.tmp"
    save_file(state, str(staging), metadata={"format": "pt"})  # transformers checks this key
    usual_mode(staging)
    os.replace(staging, out_dir / "model.safetensors")
    staging = out_dir / ".config.json.tmp"
    staging.write_text(json.dumps(hf_config, indent=2, sort_keys=True) + "\n")
    os.replace(staging, out_dir / "config.json")
    return out_dir


def _gpt2_state(model: StandaloneDecoder, n_head: int, n_inner: int) -> dict[str, torch.Tensor]:
    config = model.config
    src = {name: t.detach() for name, t in model.state_dict().items()}
    state = {
        "transformer.wte.weight": src["wte.weight"],
        "transformer.wpe.weight": src["wpe.weight"],
        "transformer.ln_f.weight": src["ln_f.weight"],
        "transformer.ln_f.bias": src["ln_f.bias"],
    }
    d, hd = config.d_model, config.head_dim
    for i, heads in enumerate(config.heads):
        s, t = f"blocks.{i}.", f"transformer.h.{i}."
        for ln in ("ln_1", "ln_2"):
            state[f"{t}{ln}.weight"], state[f"{t}{ln}.bias"] = src[f"{s}{ln}.weight"], src[f"{s}{ln}.bias"]
        # q;k;v blocks keep their order; each is zero-padded from `heads` to `n_head` heads.
        qkv_w = _pad(src[f"{s}attn.qkv.weight"].view(3, heads * hd, d), 1, n_head * hd)
        qkv_b = _pad(src[f"{s}attn.qkv.bias"].view(3, heads * hd), 1, n_head * hd)
        state[f"{t}attn.c_attn.weight"] = qkv_w.reshape(3 * n_head * hd, d).T  # Conv1D: (in, out)
        state[f"{t}attn.c_attn.bias"] = qkv_b.reshape(-1)
        state[f"{t}attn.c_proj.weight"] = _pad(src[f"{s}attn.proj.weight"], 1, n_head * hd).T
        state[f"{t}attn.c_proj.bias"] = src[f"{s}attn.proj.bias"]
        state[f"{t}mlp.c_fc.weight"] = _pad(src[f"{s}mlp.fc.weight"], 0, n_inner).T
        state[f"{t}mlp.c_fc.bias"] = _pad(src[f"{s}mlp.fc.bias"], 0, n_inner)
        state[f"{t}mlp.c_proj.weight"] = _pad(src[f"{s}mlp.proj.weight"], 1, n_inner).T
        state[f"{t}mlp.c_proj.bias"] = src[f"{s}mlp.proj.bias"]
    return {name: tensor.contiguous().clone() for name, tensor in state.items()}


def _pad(tensor: torch.Tensor, dim: int, size: int) -> torch.Tensor:
    """Zero-pad `dim` of `tensor` up to `size` (a no-op when it is already that size)."""
    missing = size - tensor.shape[dim]
    if missing == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor, tensor.new_zeros(shape)], dim=dim)
