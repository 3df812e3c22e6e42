"""The servable classifier file: what every logged model carries, and what matta itself trains and evaluates with.

Its featuriser must hash exactly as scikit-learn's ``HashingVectorizer`` did (models saved before it keep their
meaning), it must import nothing but the standard library, torch, numpy, safetensors and pandas, and matta's own
names must be the servable ones (one implementation).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.utils import murmurhash3_32 as sklearn_murmurhash3_32

from matta_core import features
from matta_core.families.classifier import extract as extraction
from matta_core.families.classifier import standalone
from matta_core.serving import matta_text_classifier as servable
from matta_core.tracking import text_predictor
from tests.mirror import BANKING77_DIR
from tests.tiny_student import write_tiny_student

TRICKY = [
    "", " ", "a", "ab", "I", "Ünïcödé ÇAFÉ naïve", "emoji 😀😀 ok", "日本語のテキスト です",
    "tab\tsep\nnew  line\xa0nbsp", "x" * 101, "\x1c\x1dword\u2003em space", "İstanbul ß STRASSE",
    "a-b_c d.e 12 345", "   leading and trailing   ",
]


def sklearn_counts(texts: list[str], config: servable.FeaturizerConfig) -> sp.csr_matrix:
    """What matta computed before the servable file: two HashingVectorizers summed."""
    common = dict(n_features=config.num_buckets, alternate_sign=False, norm=None, lowercase=config.lowercase,
                  dtype=np.float32)
    parts = []
    if config.word_ngrams[0]:
        parts.append(HashingVectorizer(analyzer="word", ngram_range=config.word_ngrams, **common).transform(texts))
    if config.char_ngrams[0]:
        parts.append(HashingVectorizer(analyzer="char_wb", ngram_range=config.char_ngrams, **common).transform(texts))
    matrix = sp.csr_matrix(sum(parts[1:], parts[0]))
    matrix.sum_duplicates()
    return matrix


@pytest.mark.parametrize("config", [
    servable.FeaturizerConfig(),
    servable.FeaturizerConfig(num_buckets=2**10),
    servable.FeaturizerConfig(num_buckets=7, word_ngrams=(1, 3), char_ngrams=(2, 4), lowercase=False),
    servable.FeaturizerConfig(num_buckets=2**31 - 1, word_ngrams=(0, 0)),
    servable.FeaturizerConfig(num_buckets=2**12, char_ngrams=(0, 0)),
], ids=["default", "1k", "odd", "huge-char-only", "word-only"])
def test_featurizer_matches_scikit_learn_on_banking77(config: servable.FeaturizerConfig) -> None:
    texts = pd.read_csv(BANKING77_DIR / "train.csv")["text"].tolist()[:1500] + TRICKY
    expected = sklearn_counts(texts, config)
    indptr, indices, counts = servable.HashedNgramFeaturizer(config).csr(texts)
    np.testing.assert_array_equal(indptr, expected.indptr)
    np.testing.assert_array_equal(indices, expected.indices)
    np.testing.assert_array_equal(counts, expected.data)
    assert counts.dtype == np.float32 and indices.dtype == np.int64


def test_murmurhash_matches_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    keys = [b"", b"a", b"ab", b"abc", b"abcd", b"abcde", "😀 ß".encode()]
    keys += [rng.integers(0, 256, rng.integers(0, 48)).astype(np.uint8).tobytes() for _ in range(5000)]
    expected = np.array([sklearn_murmurhash3_32(key, seed=0) for key in keys], dtype=np.int32)
    np.testing.assert_array_equal(servable.murmurhash3_32(keys), expected)


def test_featurizer_edges() -> None:
    featurizer = servable.HashedNgramFeaturizer(servable.FeaturizerConfig(num_buckets=16))
    indptr, indices, counts = featurizer.csr([])
    assert indptr.tolist() == [0] and len(indices) == len(counts) == 0
    with pytest.raises(TypeError, match="text 1 is a float, not a str"):
        featurizer.csr(["ok", float("nan")])
    with pytest.raises(ValueError, match="neither word nor char"):
        servable.HashedNgramFeaturizer(servable.FeaturizerConfig(word_ngrams=(0, 0), char_ngrams=(0, 0)))


def test_servable_file_imports_only_public_packages() -> None:
    tree = ast.parse(Path(servable.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative imports break when the file is loaded on its own"
            imported.add((node.module or "").split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"__future__"}
    assert third_party == {"numpy", "pandas", "torch", "safetensors"}


def test_matta_uses_the_servable_implementation() -> None:
    """One implementation: matta's names are the servable file's objects (or thin subclasses of them)."""
    assert standalone.StandaloneClassifier is servable.StandaloneClassifier
    assert extraction.ExtractedConfig is servable.ExtractedConfig
    assert features.FeaturizerConfig is servable.FeaturizerConfig
    assert issubclass(features.HashedNgramFeaturizer, servable.HashedNgramFeaturizer)
    assert text_predictor.TextPredictor is servable.TextPredictor


def test_predictor_logits_match_the_training_side_batches(tmp_path: Path) -> None:
    folder = write_tiny_student(tmp_path / "m", 3)
    texts = pd.read_csv(BANKING77_DIR / "test.csv")["text"].tolist()[:200] + TRICKY
    model, saved = extraction.load_extracted(folder)
    batch = features.HashedNgramFeaturizer(saved.features).transform(texts).batch(list(range(len(texts))))
    with torch.no_grad():
        expected = model(batch.ids, batch.offsets, batch.counts).numpy()
    predictor = servable.TextPredictor(folder)
    np.testing.assert_array_equal(predictor.logits(texts), expected)
    np.testing.assert_array_equal(predictor.probabilities(texts), torch.softmax(torch.from_numpy(expected), -1))
