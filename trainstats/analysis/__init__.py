"""Memorization analysis: per-sample scores, the study's metrics, detector evaluation vs noise flags.

Pure functions over arrays and tables (no TensorFlow). Per-sample scores take long-format rows
(one per appearance) and return one value per sample; :func:`analyze_runs` streams whole run
directories (tens of millions of rows) through the same code. See ``docs/analysis.md``.

>>> from trainstats.analysis import cumulative_sample_loss, auroc
>>> cumulative_sample_loss([1, 1, 2], [0.5, 0.5, 3.0]).tolist()
[1.0, 3.0]
>>> auroc([False, True], [0.2, 0.9])
1.0
"""
from trainstats.analysis.accumulate import SampleStats
from trainstats.analysis.columns import HeadColumns, RunInfo, context_columns, discover_heads, run_info
from trainstats.analysis.detection import (
    DIRECTIONS,
    auroc,
    auroc_ci,
    average_precision,
    average_ranks,
    calibrated_cutoff,
    evaluate_detectors,
    precision_at_k,
    roc_curve,
    suspicion,
)
from trainstats.analysis.memorization import Memorization, memorization
from trainstats.analysis.metrics import NOISE_GROUPS, always_no_bug, generalization_gap, gini, sorted_curve
from trainstats.analysis.runs import RunAnalysis, analyze_run
from trainstats.analysis.scores import (
    SCORE_NAMES,
    SCORE_UNITS,
    area_under_margin,
    confidence,
    correctness,
    cumulative_sample_loss,
    final_correctness,
    first_learned_epoch,
    forgetting_events,
    learned_for_good_epoch,
    mean_loss,
    variability,
)
from trainstats.analysis.sql import ORDER_DEPENDENT, SCORE_SQL, score_sql
from trainstats.analysis.sql_engines import duckdb_scores, spark_rows, spark_scores
from trainstats.analysis.study import Analysis, analyze_runs, default_jobs, head_scores, runs_by_kind

__all__ = [
    "Analysis", "DIRECTIONS", "HeadColumns", "Memorization", "NOISE_GROUPS", "ORDER_DEPENDENT", "RunAnalysis",
    "RunInfo", "SCORE_NAMES", "SCORE_SQL", "SCORE_UNITS", "SampleStats", "always_no_bug", "analyze_run", "analyze_runs", "area_under_margin", "auroc",
    "auroc_ci", "average_precision", "average_ranks", "calibrated_cutoff", "confidence", "context_columns",
    "correctness", "cumulative_sample_loss", "default_jobs", "discover_heads", "duckdb_scores", "evaluate_detectors", "final_correctness",
    "first_learned_epoch", "forgetting_events", "generalization_gap", "gini", "head_scores",
    "learned_for_good_epoch", "mean_loss", "memorization", "precision_at_k", "roc_curve", "run_info",
    "runs_by_kind", "score_sql", "sorted_curve", "spark_rows", "spark_scores", "suspicion", "variability",
]
