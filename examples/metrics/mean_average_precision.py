# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""Mean average precision (mAP): for each class, the average precision of the examples ranked by that class's
score, then the unweighted mean over the classes that have at least one positive reference.

Average precision of one class = mean over its positive examples of the precision at that example's rank (ties
broken by the stable order of the inputs); the usual metric for multi-label audio tagging (FSD50K, AudioSet).
Predictions are per-class scores (logits or probabilities); references are 0/1 vectors, or (config
`"multiclass"`) class indices. A local `evaluate` metric script, so it works offline.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "Macro mean average precision over classes with at least one positive reference."

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[list[float]]`): one score per class for every example (higher = more likely).
    references (`list[list[int]]`): 0/1 per class (config "multilabel", the default), or class indices
        (`list[int]`, config "multiclass").
Returns:
    mAP (`float`): in [0, 1].
Example:
    >>> metric = evaluate.load("examples/metrics/mean_average_precision.py")
    >>> metric.compute(predictions=[[0.9, 0.1], [0.2, 0.8]], references=[[1, 0], [0, 1]])
    {'mAP': 1.0}
"""


def average_precision(scores: np.ndarray, positives: np.ndarray) -> float:
    """Average precision of one class: scores (n,), positives (n,) bool, at least one positive."""
    order = np.argsort(-scores, kind="stable")
    hits = positives[order].astype(np.float64)
    precision_at_k = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision_at_k * hits).sum() / hits.sum())


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MeanAveragePrecision(evaluate.Metric):
    def _info(self):
        reference = (
            datasets.Value("int64") if self.config_name == "multiclass" else datasets.Sequence(datasets.Value("int64"))
        )
        features = datasets.Features(
            {"predictions": datasets.Sequence(datasets.Value("float32")), "references": reference}
        )
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation="", inputs_description=_KWARGS_DESCRIPTION, features=features
        )

    def _compute(self, predictions, references):
        scores = np.asarray(predictions, dtype=np.float64)
        references = np.asarray(references)
        if scores.ndim != 2 or scores.shape[0] == 0:
            raise ValueError("mean_average_precision needs predictions of shape (examples, classes).")
        if references.ndim == 1:
            references = np.eye(scores.shape[1], dtype=np.int64)[references]
        positives = references.astype(bool)
        classes = [c for c in range(scores.shape[1]) if positives[:, c].any()]
        if not classes:
            return {"mAP": 0.0}
        return {"mAP": float(np.mean([average_precision(scores[:, c], positives[:, c]) for c in classes]))}
