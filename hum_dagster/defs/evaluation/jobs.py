"""Jobs of the evaluation stage."""

import dagster as dg

from hum_dagster.defs.evaluation.assets import (
    eval_partitions,
    eval_report,
    eval_scores,
    finetuned_eval_scores,
    finetuned_general_scores,
    general_partitions,
    general_report,
    general_scores,
)
from hum_dagster.defs.training.assets import training_partitions

evaluate_job = dg.define_asset_job(
    "evaluate_model",
    selection=dg.AssetSelection.assets(eval_scores),
    partitions_def=eval_partitions,
    description="Score one listed model on one benchmark in basic and compound instruction styles.",
)

evaluate_finetuned_job = dg.define_asset_job(
    "evaluate_checkpoint",
    selection=dg.AssetSelection.assets(finetuned_eval_scores),
    partitions_def=training_partitions,
    description="Score one fine-tuned checkpoint on every benchmark in both styles.",
)

report_job = dg.define_asset_job(
    "build_eval_report",
    selection=dg.AssetSelection.assets(eval_report),
    description="The Table-1 comparison of every evaluated model.",
)

general_job = dg.define_asset_job(
    "evaluate_general",
    selection=dg.AssetSelection.assets(general_scores),
    partitions_def=general_partitions,
    description="General capability of one listed model (lm-evaluation-harness through Pipes).",
)

general_finetuned_job = dg.define_asset_job(
    "evaluate_general_checkpoint",
    selection=dg.AssetSelection.assets(finetuned_general_scores),
    partitions_def=training_partitions,
    description="General capability of one fine-tuned checkpoint.",
)

general_report_job = dg.define_asset_job(
    "build_general_report",
    selection=dg.AssetSelection.assets(general_report),
    description="The Table-5 comparison of general capability.",
)

EVALUATION_JOBS = (evaluate_job, evaluate_finetuned_job, report_job, general_job,
                   general_finetuned_job, general_report_job)
