"""The servable classifier: an ordinary PyTorch module of fixed widths, as produced by extraction.

Defined in `matta_core.serving.matta_text_classifier`, the one file (torch, numpy, safetensors, pandas; no matta)
that every logged model carries: the class trained against here is the class that serves.
"""

from __future__ import annotations

from matta_core.serving.matta_text_classifier import StandaloneClassifier, pool_bag

__all__ = ["StandaloneClassifier", "pool_bag"]
