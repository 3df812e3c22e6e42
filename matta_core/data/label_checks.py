"""Label checks across splits: test labels no training row has, labels with too few rows, too many labels.

None of these is visible row by row, and each makes a run "succeed" with numbers that mean little: a test label
the model never saw always counts as an error, and a label with two training rows cannot be learned. Each check
returns warnings, plain dicts ``{"code", "message", ...numbers}`` that the manifest keeps, the prepare step prints
and logs, and the report shows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from matta_core.data.errors import UnseenTestLabelsError
from matta_core.data.quarantine import Reason
from matta_core.data.validate import ValidatedSource, ValidRow

#: `data.unseen_test_labels` choices.
UNSEEN_TEST_LABEL_MODES = ("error", "drop", "keep")
_SHOWN = 8


def check_unseen_test_labels(
    rows: dict[str, list[ValidRow]], test: ValidatedSource | None, mode: str
) -> list[dict[str, Any]]:
    """Test rows whose label is in no training-split row; `rows` holds the rows of each split.

    For a test split read from its own file (`test`), `mode` decides: "error" raises `UnseenTestLabelsError`,
    "drop" quarantines those rows as `unseen_test_label` (and takes them out of ``rows["test"]``), "keep" keeps
    them. For a test split drawn from the training file by hash (`test` is None) they are kept: such labels are
    also rare, and the rare-label warning says so. Returns a warning whenever there are such rows.
    """
    if mode not in UNSEEN_TEST_LABEL_MODES:
        raise ValueError(f"unseen_test_labels must be one of {list(UNSEEN_TEST_LABEL_MODES)}, got {mode!r}.")
    seen = {r.label for r in rows["train"]}
    unseen = Counter(r.label for r in rows["test"] if r.label not in seen)
    if not unseen:
        return []
    n_rows, n_test = sum(unseen.values()), len(rows["test"])
    where = test.table.uri if test is not None else "the test split (drawn from the training file)"
    what = (
        f"{where}: {n_rows} of {n_test} test rows ({n_rows / n_test:.1%}) carry {len(unseen)} label(s) that no "
        f"training row has: {_labels_with_counts(unseen, most_first=True)}"
    )
    numbers = {"rows": n_rows, "test_rows": n_test, "labels": dict(sorted(unseen.items()))}
    if test is None:
        message = f"{what}. A model cannot predict a label it never saw: these rows always count as errors."
        return [{"code": "unseen_test_labels", "message": message, "action": "keep", **numbers}]
    if mode == "error":
        raise UnseenTestLabelsError(
            f"{what}. A model cannot predict a label it never saw, so these rows would always count as errors. "
            "Fix the label names or add training rows for them; or set data.unseen_test_labels to drop (quarantine "
            "these rows) or keep (evaluate them anyway).",
            file=test.table.uri,
            labels=unseen,
        )
    if mode == "drop":
        kept = []
        for r in rows["test"]:
            if r.label in unseen:
                test.quarantine(r, Reason.UNSEEN_TEST_LABEL, f"label {r.label!r} is in no training row")
            else:
                kept.append(r)
        rows["test"] = kept
        test.rows = kept
        message = f"{what}. They were quarantined as {Reason.UNSEEN_TEST_LABEL} (data.unseen_test_labels: drop)."
    else:
        message = (f"{what}. They are evaluated anyway and always count as errors (data.unseen_test_labels: keep): "
                   "test accuracy is capped below 100 %.")
    return [{"code": "unseen_test_labels", "message": message, "action": mode, **numbers}]


def label_warnings(
    train_counts: Mapping[str, int], labels: Sequence[str], min_rows_per_label: int
) -> list[dict[str, Any]]:
    """Warnings about the training split's labels: those with fewer than `min_rows_per_label` rows, and more
    labels than the rows can support (fewer than `min_rows_per_label` rows per label on average)."""
    counts = {name: int(train_counts.get(name, 0)) for name in labels}
    if not counts:
        return []
    warnings: list[dict[str, Any]] = []
    rare = {name: n for name, n in counts.items() if n < min_rows_per_label}
    if rare:
        warnings.append({
            "code": "rare_labels",
            "message": (
                f"{len(rare)} of {len(counts)} labels have fewer than {min_rows_per_label} training rows "
                f"(data.min_rows_per_label): {_labels_with_counts(rare)}. A model cannot learn a label from so few "
                "examples: add rows, or merge or drop these labels."
            ),
            "labels": dict(sorted(rare.items())),
            "min_rows_per_label": min_rows_per_label,
        })
    rows = sum(counts.values())
    average = rows / len(counts)
    if average < min_rows_per_label:
        warnings.append({
            "code": "too_many_labels",
            "message": (
                f"{len(counts):,} labels for {rows:,} training rows: {average:.1f} rows per label on average, below "
                f"data.min_rows_per_label={min_rows_per_label}. That is more labels than this data can teach a "
                "model; expect accuracy near chance. Merge labels or add rows."
            ),
            "labels": len(counts),
            "train_rows": rows,
            "rows_per_label": average,
            "min_rows_per_label": min_rows_per_label,
        })
    return warnings


def _labels_with_counts(counts: Mapping[str, int], *, most_first: bool = False) -> str:
    # The ones to look at first: the rarest labels, or the unseen labels that cost the most test rows.
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1] if most_first else kv[1], kv[0]))
    shown = ", ".join(f"{name!r} ({n})" for name, n in ordered[:_SHOWN])
    return shown + (f", ... ({len(ordered) - _SHOWN} more)" if len(ordered) > _SHOWN else "")
