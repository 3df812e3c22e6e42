"""Bytes of a saved model: on disk, as tensors, and resident in a fresh serving process; the units budgets use.

Real files and real child processes: the generic measurement on a toy module that needs no torch (cheap), then the
classifier and decoder folders as their families measure them (a child that imports torch: a few seconds each).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from matta_core.evaluation.memory import folder_bytes, format_bytes, parse_bytes, resident_bytes, weight_bytes
from matta_core.families.classifier.evaluate import classifier_resident_bytes, evaluate_model
from matta_core.families.classifier.extract import load_extracted, save_extracted
from matta_core.families.classifier.report_step import report_step
from matta_core.families.decoder.evaluate_step import decoder_resident_bytes
from matta_core.families.decoder.standalone import StandaloneDecoder, StandaloneDecoderConfig
from matta_core.features import HashedNgramFeaturizer
from matta_core.serving.matta_text_classifier import ExtractedConfig, FeaturizerConfig
from tests.evaluation.tiny import LABELS, TEXTS
from tests.tiny_student import write_tiny_student

MB = 1000**2

# A toy "serving module" without torch: `load` allocates and touches `size` bytes, as loading weights would.
TOY_MODULE = """
def load(folder):
    size = int(open(folder + "/size").read())
    return bytearray(b"x" * size)
"""
TOY_PROBE = """
def run(module, folder):
    return module.load(folder)
"""


@pytest.mark.parametrize(("text", "expected"), [
    (1234, 1234), (2.0e6, 2_000_000), ("2MB", 2_000_000), ("1.5 MiB", 1_572_864), ("500kB", 500_000),
    ("2 GB", 2_000_000_000), (" 3 kib ", 3072), ("4096", 4096), ("7 B", 7), ("2e6", 2_000_000), ("0.5 MB", 500_000),
])
def test_parse_bytes_reads_ints_and_units(text: object, expected: int) -> None:
    assert parse_bytes(text) == expected and isinstance(parse_bytes(text), int)


@pytest.mark.parametrize(("text", "why"), [
    ("2 MBs", "is not a size"), ("two MB", "is not a size"), ("-1MB", "is not a size"), ("2 Mo", "is not a size"),
    ("1.5", "not a whole number"), (1.5, "not a whole number"), (True, "is not a size"), (None, "is not a size"),
])
def test_parse_bytes_refuses_what_is_not_a_size_and_says_what_is(text: object, why: str) -> None:
    with pytest.raises(ValueError, match=why) as info:
        parse_bytes(text, "max_bytes_on_disk")
    assert str(info.value).startswith("max_bytes_on_disk: ") and "'1.5 MiB'" in str(info.value)
    assert "KiB, MiB, GiB" in str(info.value) and "kB, MB, GB" in str(info.value)


def test_format_bytes_uses_decimal_units() -> None:
    assert [format_bytes(n) for n in (512, 1_800_000, 2_000_000, 135_320_325, 2.5e9, None)] == [
        "512 B", "1.8 MB", "2 MB", "135.3 MB", "2.5 GB", "-"]


def test_bytes_on_disk_is_the_extracted_folders_size(tmp_path: Path) -> None:
    folder = write_tiny_student(tmp_path / "student", num_classes=4)
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["config.json", "model.safetensors"]
    on_disk = sum((folder / name).stat().st_size for name in files)
    assert folder_bytes(folder) == on_disk > 0
    (folder / "notes").mkdir()
    (folder / "notes" / "extra.txt").write_text("x" * 100)  # whatever the folder holds counts
    assert folder_bytes(folder) == on_disk + 100
    with pytest.raises(FileNotFoundError, match="not a folder"):
        folder_bytes(tmp_path / "missing")


def test_evaluation_record_carries_bytes_and_no_resident_memory_without_speed(tmp_path: Path) -> None:
    folder = write_tiny_student(tmp_path / "student", num_classes=4)
    model, config = load_extracted(folder)
    features = HashedNgramFeaturizer(config.features).transform(TEXTS)
    record = evaluate_model(model, features, LABELS, measure_speed=False, model_dir=folder).to_dict()
    state = model.state_dict()
    assert record["weight_bytes"] == sum(t.numel() * t.element_size() for t in state.values())
    assert "idf" in state  # buffers count: the IDF vector ships with the weights
    assert record["bytes_on_disk"] == folder_bytes(folder) > record["weight_bytes"]  # + header and config.json
    assert record["resident_bytes"] is None
    # Evaluated from memory (no folder), there is nothing on disk to measure; the keys are there all the same.
    in_memory = evaluate_model(model, features, LABELS, measure_speed=False).to_dict()
    assert in_memory["bytes_on_disk"] is None and set(in_memory) == set(record)


def test_weight_bytes_counts_a_tied_tensor_once() -> None:
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 10, bias=False))
    model[1].weight = model[0].weight
    model.register_buffer("scale", torch.ones(3, dtype=torch.float64))
    assert weight_bytes(model) == 10 * 4 * 4 + 3 * 8


def test_resident_bytes_of_a_toy_module_is_what_its_load_allocates(tmp_path: Path) -> None:
    module = tmp_path / "toy_serving.py"
    module.write_text(TOY_MODULE)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "size").write_text(str(40 * MB))
    measured = resident_bytes(module, folder, TOY_PROBE)
    assert 38 * MB < measured < 48 * MB


def test_resident_bytes_failure_names_the_model_folder(tmp_path: Path) -> None:
    module = tmp_path / "toy_serving.py"
    module.write_text(TOY_MODULE)
    with pytest.raises(RuntimeError, match=r"model in .*nowhere.* failed: the child process exited with 1") as info:
        resident_bytes(module, tmp_path / "nowhere", TOY_PROBE)
    assert "FileNotFoundError" in str(info.value)  # the child's own error, not just an exit code
    # A measurement that hangs is given up after the timeout, and the next one starts a fresh measuring process.
    hangs = TOY_PROBE + "\nimport time\n_load = run\ndef run(module, folder):\n    time.sleep(30)\n"
    with pytest.raises(RuntimeError, match=r"ran past 0\.5 s"):
        resident_bytes(module, tmp_path / "nowhere", hangs, timeout_s=0.5)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "size").write_text(str(MB))
    assert resident_bytes(module, folder, hangs.replace("time.sleep(30)", "return _load(module, folder)")) > 0


def test_classifier_resident_bytes_counts_the_whole_table(tmp_path: Path) -> None:
    """A 2^16 x 64 table (16.8 MB): one prediction reads a row of it, the count must still cover all of it (the
    weights file is memory-mapped and paged in lazily, so a bare RSS reading after one prediction shows ~5 MB)."""
    torch.manual_seed(0)
    config = ExtractedConfig(num_buckets=2**16, embed_dim=64, hidden_widths=(32,), num_classes=4,
                             num_dense_features=0, activation="relu", features=FeaturizerConfig(num_buckets=2**16))
    model = config.build()
    folder = save_extracted(model, config, tmp_path / "wide-table")
    weights = weight_bytes(model)
    assert weights > 16 * MB
    measured = classifier_resident_bytes(folder)
    assert 0.9 * weights < measured < weights + 64 * MB


def test_evaluation_with_speed_measures_resident_memory(tmp_path: Path) -> None:
    folder = write_tiny_student(tmp_path / "student", num_classes=4)
    model, config = load_extracted(folder)
    features = HashedNgramFeaturizer(config.features).transform(TEXTS)
    record = evaluate_model(model, features, LABELS, latency_examples=5, throughput_batch_size=8,
                            model_dir=folder).to_dict()
    # A tiny model: what loading it adds is mostly the loader's own objects; measured, positive, well under 64 MB.
    assert record["latency_p95_ms"] is not None and 0 < record["resident_bytes"] < 64 * MB


def test_decoder_folder_bytes_and_resident_memory(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = StandaloneDecoderConfig(vocab_size=4096, n_positions=16, d_model=256, head_dim=32, ffn_widths=(64,),
                                     heads=(2,))
    folder = StandaloneDecoder(config).save(tmp_path / "decoder")
    model = StandaloneDecoder.load(folder)
    weights = weight_bytes(model)
    assert weights == 4 * config.param_count() > 4 * MB  # the tied LM head once
    assert folder_bytes(folder) > weights
    assert 0.5 * weights < decoder_resident_bytes(folder) < weights + 64 * MB


def test_run_report_shows_size_on_disk_and_resident_memory_in_mb(tmp_path: Path) -> None:
    base = {"arm": "matta", "params": 33_600_000, "dense_params": 13_300, "accuracy": 0.9, "macro_f1": 0.89}
    records = [{**base, "name": "student-64", "flops_per_example": 2e5, "bytes_on_disk": 135_320_325,
                "resident_bytes": 140_500_992},
               {**base, "name": "ta-1024", "flops_per_example": 9e5, "bytes_on_disk": 136_170_000,
                "resident_bytes": None}]
    report_step(records, None, str(tmp_path / "report"))
    markdown = (tmp_path / "report" / "report.md").read_text()
    header = next(line for line in markdown.splitlines() if line.startswith("| model |"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns.index("on disk MB") == columns.index("dense params") + 1
    assert columns.index("resident MB") == columns.index("on disk MB") + 1
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")]
            for line in markdown.splitlines() if line.startswith("| ta-") or line.startswith("| student-")}
    student, ta = rows["student-64 *"], rows["ta-1024"]
    at = columns.index("on disk MB")
    assert student[at:at + 2] == ["135.32", "140.50"] and ta[at:at + 2] == ["136.17", "–"]
    assert "on disk MB" in (tmp_path / "report" / "report.html").read_text()
    # report.json keeps the bytes, not the MB shown.
    stored = json.loads((tmp_path / "report" / "report.json").read_text())["models"]
    assert {m["name"]: m["bytes_on_disk"] for m in stored} == {"student-64": 135_320_325, "ta-1024": 136_170_000}
    assert "bytes_on_disk_mb" not in stored[0]
