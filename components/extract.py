"""Component: cut one standalone model of the given per-layer widths out of the nested model (step 4)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from matta_core.image import default_image_tag


@dsl.component(base_image=default_image_tag(), install_kfp_package=False)
def extract_width(
    trained: Input[Model],
    prepared: Input[Dataset],
    widths: list,
    task: str,
    data_json: str,
    extraction_json: str,
    code_version: str,
    tracking_uri: str,
    parent_run_id: str,
    experiment: str,
    model: Output[Model],
    metrics: Output[Metrics],
) -> None:
    """Write the standalone model for `widths` (model.safetensors + config.json) to `model`; parity-checked.

    `widths`: per-layer widths (classifier), or one [ffn_width, n_heads] pair per block (``task: causal_lm``).
    """
    from matta_core.config import DataSection, ExtractionSection
    from matta_core.steps import tracked

    tracking = tracked.start_task(tracking_uri, parent_run_id, code_version, experiment=experiment)
    data = tracked.load_section(DataSection, data_json, "data")
    extraction = tracked.load_section(ExtractionSection, extraction_json, "extraction")
    tracked.publish_metrics(metrics, tracked.extract(trained.path, widths, model.path, prepared.path, data, tracking,
                                                      task, extraction))
