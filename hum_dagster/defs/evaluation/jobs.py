"""Jobs of the evaluation stage."""

import dagster as dg

from hum_dagster.defs.evaluation.assets import eval_partitions, eval_report, eval_scores

evaluate_job = dg.define_asset_job(
    "evaluate_model",
    selection=dg.AssetSelection.assets(eval_scores),
    partitions_def=eval_partitions,
    description="Score one model on one benchmark in basic and compound instruction styles.",
)

report_job = dg.define_asset_job(
    "build_eval_report",
    selection=dg.AssetSelection.assets(eval_report),
    description="The Table-1 comparison of every evaluated model.",
)
