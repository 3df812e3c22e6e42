"""The A/B experiment handoff: what an experimentation team needs to test a challenger against the champion.

For each registered challenger, ``ab_handoff.json`` (validated by
``matta_core/release/ab_handoff.schema.json``, versioned by ``schema_version``) and a readable
``ab_handoff.md``: both models pinned by version (``models:/name/3``, never an alias, so the experiment
cannot drift), offline deltas with their intervals, the primary metric and its sample size per arm,
guardrails, the traffic ramp, and the stopping and rollback rules.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from matta_core.release.gate import REFERENCE_CHAMPION, GateDecision
from matta_core.release.sample_size import two_proportion_sample_size

SCHEMA_VERSION = "1.2.0"  # 1.1: "registry", the aliases as the release left them; 1.2: byte budgets
# Shipped inside the package (pyproject package-data), so an installed wheel or image validates too.
SCHEMA_PATH = Path(__file__).resolve().parent / "ab_handoff.schema.json"
HANDOFF_JSON = "ab_handoff.json"
HANDOFF_MD = "ab_handoff.md"
#: Offline metrics compared in the handoff; accuracy carries the gate's bootstrap interval.
OFFLINE_METRICS = ("accuracy", "macro_f1", "latency_p95_ms", "params", "flops_per_example")


class RampStage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    challenger_percent: float = Field(gt=0.0, le=50.0)
    min_duration_hours: float = Field(gt=0.0)


class Guardrail(BaseModel):
    """A metric that must not get worse by more than a threshold (relative to the champion arm, or absolute)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    rule: str = Field(pattern="^(max_relative_increase|max_absolute)$")
    threshold: float = Field(ge=0.0)
    description: str = ""
    # The offline metric that predicts it (its delta is shown beside the rule), or None when offline has no proxy.
    offline_metric: str | None = None


def _default_ramp() -> list[RampStage]:
    # Small first: a broken model hurts 1 % of users for a day; 50 % is where the test gets its power.
    return [RampStage(challenger_percent=1, min_duration_hours=24), RampStage(challenger_percent=5,
            min_duration_hours=24), RampStage(challenger_percent=20, min_duration_hours=48),
            RampStage(challenger_percent=50, min_duration_hours=168)]


def _default_guardrails() -> list[Guardrail]:
    return [
        Guardrail(metric="latency_p95_ms", rule="max_relative_increase", threshold=0.10,
                  description="p95 serving latency of the challenger arm vs the champion arm",
                  offline_metric="latency_p95_ms"),
        Guardrail(metric="error_rate", rule="max_absolute", threshold=0.01,
                  description="share of requests answered with an error or fallback"),
        Guardrail(metric="cost_per_1k_requests", rule="max_relative_increase", threshold=0.05,
                  description="serving cost (CPU seconds priced) per 1,000 requests",
                  offline_metric="flops_per_example"),
    ]


class HandoffConfig(BaseModel):
    """The online experiment's design (config ``release.handoff``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    primary_metric: str = "conversion_rate"
    primary_metric_description: str = "share of sessions resolved without escalation to an agent"
    baseline_rate: float = Field(0.10, gt=0.0, lt=1.0)
    # Absolute change of the rate to detect (0.01 = one percentage point), > 0: the challenger must improve it.
    minimum_detectable_effect: float = Field(0.01, gt=0.0, lt=1.0)
    alpha: float = Field(0.05, gt=0.0, lt=1.0)
    power: float = Field(0.8, gt=0.0, lt=1.0)
    randomization_unit: str = "user"
    ramp: list[RampStage] = Field(default_factory=_default_ramp)
    guardrails: list[Guardrail] = Field(default_factory=_default_guardrails)
    # Requests (randomisation units) per day, to estimate how long the final stage must run; None: not estimated.
    daily_units: int | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _ramp_increases(self) -> HandoffConfig:
        shares = [s.challenger_percent for s in self.ramp]
        if not shares or shares != sorted(shares) or len(set(shares)) != len(shares):
            raise ValueError(f"ramp must list stages with strictly increasing challenger_percent, got {shares}")
        if self.baseline_rate + self.minimum_detectable_effect >= 1.0:
            raise ValueError("baseline_rate + minimum_detectable_effect must be < 1")
        return self


def _numbers(record: Mapping[str, Any]) -> dict[str, float]:
    """The numeric entries of a record (booleans are not metrics)."""
    return {k: v for k, v in record.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _delta(metric: str, challenger: Mapping[str, Any], reference: Mapping[str, Any]) -> dict[str, Any]:
    new, old = challenger.get(metric), reference.get(metric)
    known = isinstance(new, int | float) and isinstance(old, int | float)
    return {"metric": metric, "challenger": new if known else None, "reference": old if known else None,
            "delta": float(new) - float(old) if known else None,  # type: ignore[arg-type]
            "relative_delta": (float(new) - float(old)) / float(old) if known and old else None,  # type: ignore[arg-type]
            "interval": None}


def build_handoff(
    decision: GateDecision,
    config: HandoffConfig,
    *,
    challenger_version: str,
    reference_metrics: Mapping[str, Any],
    size_class_budget: Mapping[str, float],
    tracking_uri: str | None = None,
    created_at: float | None = None,
    registry_aliases: Mapping[str, str] | None = None,
    challenger_alias: bool = True,
) -> dict[str, Any]:
    """The handoff document (a dict that validates against the schema) for a registered, passing decision.

    `registry_aliases`: the registered model's aliases read right after this release proposed `challenger_version`
    (default: ``@challenger`` on it, and on the champion's version when the reference was the champion);
    `challenger_alias`: whether ``@challenger`` points at `challenger_version` (False when a newer version from
    another run holds a release alias)."""
    if not decision.passed or decision.candidate is None or decision.comparison is None or decision.reference is None:
        raise ValueError(f"size class {decision.size_class!r}: only a candidate that passed the gate gets a handoff")
    name, ref, cmp_ = decision.registered_model, decision.reference, decision.comparison
    size = two_proportion_sample_size(config.baseline_rate, config.minimum_detectable_effect, config.alpha,
                                      config.power)
    final_share = config.ramp[-1].challenger_percent / 100.0
    days = None if config.daily_units is None else size.per_arm / (config.daily_units * final_share)
    deltas = [_delta(m, decision.candidate, reference_metrics) for m in OFFLINE_METRICS]
    deltas[0].update(challenger=cmp_.candidate_accuracy, reference=cmp_.reference_accuracy, delta=cmp_.diff,
                     relative_delta=cmp_.diff / cmp_.reference_accuracy if cmp_.reference_accuracy else None,
                     interval={"low": cmp_.ci_low, "high": cmp_.ci_high, "confidence": cmp_.confidence,
                               "method": cmp_.method, "resamples": cmp_.resamples, "seed": cmp_.seed})
    offline = {d["metric"]: d for d in deltas}
    uri_flag = f" --tracking-uri {tracking_uri}" if tracking_uri else ""
    champion = None
    if ref.kind == REFERENCE_CHAMPION:
        champion = {"model_uri": ref.model_uri, "version": ref.version, "metrics": _numbers(reference_metrics)}
    aliases = dict(registry_aliases) if registry_aliases is not None else {
        "challenger": str(challenger_version), **({"champion": str(ref.version)} if champion else {})}
    stages = [{"stage": i + 1, "challenger_percent": s.challenger_percent,
               "champion_percent": 100.0 - s.challenger_percent, "min_duration_hours": s.min_duration_hours}
              for i, s in enumerate(config.ramp)]
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "matta.ab_handoff",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created_at)),
        "pipeline_run_id": decision.pipeline_run_id,
        "registered_model": name,
        "size_class": {"name": decision.size_class, "budget": dict(size_class_budget)},
        "challenger": {"model_uri": f"models:/{name}/{challenger_version}", "version": str(challenger_version),
                       "name": str(decision.candidate.get("name")),
                       "widths": list(decision.candidate.get("widths", [])), "metrics": _numbers(decision.candidate)},
        "champion": champion,
        "offline": {
            "reference": {"kind": ref.kind, "label": ref.label(), "model_uri": ref.model_uri},
            "test_rows": decision.test_rows,
            "test_rows_hash": decision.test_rows_hash,
            "deltas": deltas,
        },
        "experiment": {
            "primary_metric": {"name": config.primary_metric, "description": config.primary_metric_description,
                               "type": "proportion", "direction": "increase", "baseline_rate": config.baseline_rate,
                               "minimum_detectable_effect": config.minimum_detectable_effect,
                               "relative_mde": config.minimum_detectable_effect / config.baseline_rate},
            "design": {"test": size.test, "alpha": config.alpha, "power": config.power,
                       "randomization_unit": config.randomization_unit},
            "sample_size": {"per_arm": size.per_arm, "total": size.total, "z_alpha": size.z_alpha,
                            "z_beta": size.z_beta, "target_rate": size.target_rate, "formula": size.formula,
                            "analysis_stage": len(stages), "estimated_days_at_final_stage": days},
            "guardrails": [_guardrail(g, offline) for g in config.guardrails],
            "traffic": {"initial_split": {"champion_percent": stages[0]["champion_percent"],
                                          "challenger_percent": stages[0]["challenger_percent"]},
                        "ramp": stages},
            "stopping_rules": _stopping_rules(config, size.per_arm, len(stages)),
            "rollback_rules": _rollback_rules(config),
        },
        "registry": {"aliases": {str(k): str(v) for k, v in aliases.items()}, "challenger_alias": challenger_alias,
                     "read_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        "commands": {
            "promote": f"matta promote {name} --to champion --version {challenger_version}{uri_flag}",
            "rollback": f"matta rollback {name}{uri_flag}",
        },
    }


def _guardrail(guardrail: Guardrail, offline: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The rule plus the offline delta of its proxy metric (relative for relative rules)."""
    proxy = offline.get(guardrail.offline_metric or "", {})
    key = "relative_delta" if guardrail.rule == "max_relative_increase" else "delta"
    return {**guardrail.model_dump(), "offline_delta": proxy.get(key)}


def _stopping_rules(config: HandoffConfig, per_arm: int, final_stage: int) -> list[str]:
    return [
        f"Analyse {config.primary_metric} once, at stage {final_stage} ({config.ramp[-1].challenger_percent:g} % "
        f"challenger), after both arms reached {per_arm:,} {config.randomization_unit}s and at least "
        f"{config.ramp[-1].min_duration_hours:g} h: a fixed-horizon test, so no early stop for significance "
        "(peeking inflates alpha).",
        f"Ship (promote) iff the two-sided test rejects at alpha={config.alpha} with the challenger better and no "
        "guardrail was breached at any stage.",
        "Stop and keep the champion if the horizon is reached without a significant improvement.",
        "Earlier stages only check guardrails; a stage advances when its minimum duration passed with no breach.",
    ]


def _rollback_rules(config: HandoffConfig) -> list[str]:
    rules = []
    for g in config.guardrails:
        limit = (f"rises more than {g.threshold:.0%} over the champion arm" if g.rule == "max_relative_increase"
                 else f"exceeds {g.threshold:g}")
        rules.append(f"Set challenger traffic to 0 % at once if {g.metric} {limit} (at any stage).")
    rules.append("If the challenger was already promoted, run the rollback command: @previous becomes @champion.")
    return rules


def validate_handoff(document: Mapping[str, Any], schema_path: str | Path = SCHEMA_PATH) -> None:
    """Raise `jsonschema.ValidationError` (path and reason) if `document` does not match the schema."""
    try:
        import jsonschema
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("validating a handoff needs jsonschema (pip install jsonschema)") from exc
    schema = json.loads(Path(schema_path).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(document)


def write_handoff(document: Mapping[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``ab_handoff.json`` and ``ab_handoff.md`` into `out_dir`; return both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / HANDOFF_JSON, out / HANDOFF_MD
    json_path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    md_path.write_text(handoff_markdown(document))
    return json_path, md_path


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 1000 and not value.is_integer() else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _registry_line(doc: Mapping[str, Any]) -> str:
    registry = doc["registry"]
    aliases = ", ".join(f"@{a} = v{v}" for a, v in sorted(registry["aliases"].items())) or "none"
    if registry["challenger_alias"]:
        return f"- registry at release ({registry['read_at']}): {aliases}"
    return (f"- **not the current @challenger**: at release ({registry['read_at']}) the registry held {aliases}; a "
            f"newer version from another run holds a release alias. Check `matta models list` before starting "
            "this experiment.")


def handoff_markdown(doc: Mapping[str, Any]) -> str:
    """The readable summary of a handoff document."""
    exp, off = doc["experiment"], doc["offline"]
    champion = doc["champion"]["model_uri"] if doc["champion"] else "none yet (first release of this class)"
    lines = [
        f"# A/B handoff: {doc['registered_model']} (size class {doc['size_class']['name']})",
        "",
        f"- challenger: `{doc['challenger']['model_uri']}` ({doc['challenger']['name']}, widths "
        f"{doc['challenger']['widths']})",
        f"- champion: `{champion}`" if doc["champion"] else f"- champion: {champion}",
        f"- offline reference: {off['reference']['label']}, {off['test_rows']} test rows",
        f"- pipeline run: `{doc['pipeline_run_id']}`; schema {doc['schema_version']}",
        _registry_line(doc),
        "",
        "## Offline deltas (challenger - reference)",
        "",
        "| metric | challenger | reference | delta | interval |",
        "|---|---|---|---|---|",
    ]
    for d in off["deltas"]:
        interval = d["interval"]
        ci = (f"{interval['confidence']:.0%} CI [{interval['low']:+.4f}, {interval['high']:+.4f}]"
              if interval else "-")
        lines.append(f"| {d['metric']} | {_fmt(d['challenger'])} | {_fmt(d['reference'])} | {_fmt(d['delta'])} | "
                     f"{ci} |")
    pm, ss = exp["primary_metric"], exp["sample_size"]
    lines += [
        "",
        "## Experiment",
        "",
        f"Primary metric: **{pm['name']}** ({pm['description']}); baseline {pm['baseline_rate']:.2%}, minimum "
        f"detectable effect {pm['minimum_detectable_effect']:+.2%} absolute ({pm['relative_mde']:.1%} relative), "
        f"{exp['design']['test']}, alpha {exp['design']['alpha']}, power {exp['design']['power']}.",
        "",
        f"Sample size: **{ss['per_arm']:,} {exp['design']['randomization_unit']}s per arm** ({ss['total']:,} "
        f"total); z_(1-a/2) = {ss['z_alpha']:.4f}, z_(1-b) = {ss['z_beta']:.4f}; `{ss['formula']}`.",
        "",
        "| stage | challenger % | champion % | min duration (h) |",
        "|---|---|---|---|",
        *(f"| {s['stage']} | {s['challenger_percent']:g} | {s['champion_percent']:g} | {s['min_duration_hours']:g} |"
          for s in exp["traffic"]["ramp"]),
        "",
        "Guardrails:",
        *(f"- {g['metric']}: {g['rule']} {g['threshold']:g}" + (
            f" (offline proxy {g['offline_metric']}: {_fmt(g['offline_delta'])})" if g["offline_metric"] else "")
          for g in exp["guardrails"]),
        "",
        "Stopping rules:",
        *(f"- {rule}" for rule in exp["stopping_rules"]),
        "",
        "Rollback rules:",
        *(f"- {rule}" for rule in exp["rollback_rules"]),
        "",
        f"Promote: `{doc['commands']['promote']}`  ",
        f"Rollback: `{doc['commands']['rollback']}`",
        "",
    ]
    return "\n".join(lines)
