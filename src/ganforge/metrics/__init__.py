"""Metrics: FID, KID, precision/recall, density/coverage and class coverage of generated images,
each with the card of how it was computed.

This package knows no model and no training: it takes uint8 images (or a
function that yields batches of them) and feature arrays. See docs/METRICS.md.
"""

from ganforge.metrics.cache import RealImages, cache_root
from ganforge.metrics.class_coverage import class_kl
from ganforge.metrics.extractors import NAMES as EXTRACTORS
from ganforge.metrics.extractors import FeatureExtractor, get_extractor
from ganforge.metrics.frechet import fid, frechet_distance, gaussian
from ganforge.metrics.kid import kid
from ganforge.metrics.metric import Embedded, Metric
from ganforge.metrics.prdc import PRDC, density_coverage, prdc, precision_recall
from ganforge.metrics.provenance import (
    CHANGES_THE_NUMBER,
    FakeOrigin,
    ScoreCard,
    differences,
    which_fields_change_the_number,
)
from ganforge.metrics.registry import METRICS
from ganforge.metrics.scores import (
    Scores,
    evaluate,
    extract,
    fp32_scoring,
    parse_metrics,
    score_features,
)

__all__ = [
    "CHANGES_THE_NUMBER",
    "EXTRACTORS",
    "METRICS",
    "PRDC",
    "Embedded",
    "FakeOrigin",
    "FeatureExtractor",
    "Metric",
    "RealImages",
    "ScoreCard",
    "Scores",
    "cache_root",
    "class_kl",
    "density_coverage",
    "differences",
    "evaluate",
    "extract",
    "fid",
    "fp32_scoring",
    "frechet_distance",
    "gaussian",
    "get_extractor",
    "kid",
    "parse_metrics",
    "prdc",
    "precision_recall",
    "score_features",
    "which_fields_change_the_number",
]
