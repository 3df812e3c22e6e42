"""The nested decoder (GPT-2 style causal LM) family: config and widths, nested model, standalone model,
extraction, and export to Hugging Face GPT-2.

    DecoderConfig -> NestedDecoder(ids, widths) --extract_decoder--> StandaloneDecoder --save/load--> folder
                     (save_nested_decoder / load_nested_decoder: the trained TA as a folder)
                                                                                      --export_hf_gpt2--> HF folder
"""

from matta_core.models.decoder.config import DecoderConfig, DecoderWidths, LayerWidth, flatten_widths
from matta_core.models.decoder.extraction import decoder_param_count, extract_decoder, standalone_decoder_config
from matta_core.models.decoder.hf_export import HFExportError, export_hf_gpt2, gpt2_shape_problems
from matta_core.models.decoder.nested import NestedDecoder
from matta_core.models.decoder.nested_io import load_nested_decoder, save_nested_decoder
from matta_core.models.decoder.standalone import StandaloneDecoder, StandaloneDecoderConfig
from matta_core.models.decoder.widths import resolve_widths, sample_decoder_widths

__all__ = [
    "DecoderConfig",
    "DecoderWidths",
    "HFExportError",
    "LayerWidth",
    "NestedDecoder",
    "StandaloneDecoder",
    "StandaloneDecoderConfig",
    "decoder_param_count",
    "export_hf_gpt2",
    "extract_decoder",
    "flatten_widths",
    "gpt2_shape_problems",
    "load_nested_decoder",
    "resolve_widths",
    "sample_decoder_widths",
    "save_nested_decoder",
    "standalone_decoder_config",
]
