"""The nested decoder (GPT-2 style causal LM) family (``task: causal_lm``): config and widths, nested model,
standalone model, extraction, export to Hugging Face GPT-2, and the text corpus it reads.

    DecoderConfig -> NestedDecoder(ids, widths) --extract_decoder--> StandaloneDecoder --save/load--> folder
                     (save_nested_decoder / load_nested_decoder: the trained TA as a folder)
                                                                                      --export_hf_gpt2--> HF folder
"""
