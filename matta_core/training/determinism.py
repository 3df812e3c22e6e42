"""Devices, seeds, deterministic kernels and random-number state: what makes a run repeatable and resumable.

Randomness in a run comes from exactly three places, and each is either saved in checkpoints or derived:
  * torch's global CPU (and CUDA) generator: model initialisation and dropout — saved;
  * a dedicated `torch.Generator` for the Mix'n'Match width sampler — saved;
  * the per-epoch data order — derived from (seed, epoch), see `data.BatchOrder`; nothing to save.
numpy's and Python's global generators are not used by the trainer, so they are neither seeded nor saved.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch
import torch.utils.deterministic

# Offset between the run seed and the width sampler's seed, so the sampler's stream does not replay the one
# that initialised the model.
_SAMPLER_SEED_OFFSET = 0x5A4D


class DeviceError(RuntimeError):
    """The requested device cannot be used here."""


def resolve_device(name: str) -> torch.device:
    """"cpu", "cuda" (an error if there is no usable GPU) or "auto" (CUDA when available, else CPU)."""
    if name == "cpu":
        return torch.device("cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device 'cuda' was requested but CUDA is not available (torch {torch.__version__}, "
                f"built with CUDA {torch.version.cuda}); use device='cpu', or 'auto' to fall back to CPU"
            )
        return torch.device("cuda")
    raise DeviceError(f"device {name!r} unknown; allowed: 'cpu', 'cuda', 'auto'")


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global generators (CPU and all CUDA devices) and return a fresh width-sampler generator."""
    torch.manual_seed(seed)
    sampler = torch.Generator()
    sampler.manual_seed(seed + _SAMPLER_SEED_OFFSET)
    return sampler


@contextlib.contextmanager
def deterministic(device: torch.device, num_threads: int | None = None) -> Iterator[None]:
    """Run the body with deterministic kernels (and a fixed thread count), then restore the previous settings.

    On CPU every op the trainer uses has a deterministic kernel, so a non-deterministic one is an error
    (`warn_only=False`): it would silently break bitwise resume. On CUDA some ops the loss uses may have no
    deterministic kernel in a given torch build, so there we only warn; CUDA runs are repeatable in practice but
    not guaranteed bitwise.
    """
    previous_mode = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    previous_threads = torch.get_num_threads()
    previous_fill = torch.utils.deterministic.fill_uninitialized_memory  # type: ignore[attr-defined]
    if device.type == "cuda":
        # cuBLAS picks reduction strategies per workspace; a fixed workspace config makes them deterministic.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=device.type != "cpu")
    # Deterministic mode also NaN-fills every new uninitialised tensor, a guard against kernels that read memory
    # they never wrote. None of the ops here do, and the fill costs ~30% of a CPU step (the embedding's dense
    # gradient and AdamW temporaries are re-allocated each step); the resume and determinism tests still hold.
    torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous_mode, warn_only=previous_warn)
        torch.utils.deterministic.fill_uninitialized_memory = previous_fill  # type: ignore[attr-defined]
        if num_threads is not None:
            torch.set_num_threads(previous_threads)


def rng_state(sampler: torch.Generator) -> dict[str, torch.Tensor]:
    """Every generator state the run depends on, as named uint8 tensors (safetensors-ready)."""
    state = {"torch_cpu": torch.get_rng_state(), "width_sampler": sampler.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, cuda_state in enumerate(torch.cuda.get_rng_state_all()):
            state[f"torch_cuda.{i}"] = cuda_state
    return state


def restore_rng_state(state: dict[str, torch.Tensor], sampler: torch.Generator) -> None:
    """Put back the generator states saved by `rng_state`."""
    torch.set_rng_state(state["torch_cpu"])
    sampler.set_state(state["width_sampler"])
    cuda_states = [state[f"torch_cuda.{i}"] for i in range(len(state)) if f"torch_cuda.{i}" in state]
    if cuda_states and torch.cuda.is_available():
        # A checkpoint written on more GPUs than are visible now restores the states of the visible ones.
        count = min(len(cuda_states), torch.cuda.device_count())
        for i in range(count):
            torch.cuda.set_rng_state(cuda_states[i], i)
