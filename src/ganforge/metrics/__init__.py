"""Metrics: FID, KID, precision/recall, density/coverage and class coverage of generated images.

This package knows no model and no training: it takes uint8 images (or a
function that yields batches of them) and feature arrays. See docs/METRICS.md.
"""

from ganforge.metrics.cache import RealImages, cache_root
from ganforge.metrics.class_coverage import class_kl
from ganforge.metrics.evaluate import (
    METRICS,
    Scores,
    evaluate,
    extract,
    parse_metrics,
    score_features,
)
from ganforge.metrics.extractors import NAMES as EXTRACTORS
from ganforge.metrics.extractors import FeatureExtractor, get_extractor
from ganforge.metrics.frechet import fid, frechet_distance, gaussian
from ganforge.metrics.kid import kid
from ganforge.metrics.prdc import PRDC, density_coverage, prdc, precision_recall

__all__ = [
    "EXTRACTORS",
    "METRICS",
    "PRDC",
    "FeatureExtractor",
    "RealImages",
    "Scores",
    "cache_root",
    "class_kl",
    "density_coverage",
    "evaluate",
    "extract",
    "fid",
    "frechet_distance",
    "gaussian",
    "get_extractor",
    "kid",
    "parse_metrics",
    "prdc",
    "precision_recall",
    "score_features",
]
