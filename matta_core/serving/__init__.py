"""What a logged model runs where it is served: code that imports torch, numpy, safetensors and pandas, never matta.

- `matta_text_classifier`: the whole servable text classifier in one file (hashed n-gram featuriser, network,
  saved form, predictor). Every logged classifier carries a copy of it, so a registered model loads from
  public packages alone; matta imports the same file, so training, evaluation and serving share one
  implementation.

Nothing is imported here: ``import matta_core.serving.matta_text_classifier`` loads that file only.
"""
