# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""Macro-averaged F1: the unweighted mean over classes of each class's F1 score.

Config `"multiclass"` (default): predictions and references are class indices. Config `"multilabel"`: they are
binary indicator vectors (one 0/1 per class). A class that is neither predicted nor present counts as F1 = 0 when
`num_classes` is given, and is skipped otherwise (only classes seen in either predictions or references count).
A local `evaluate` metric script, so `evaluate.load("examples/metrics/macro_f1.py")` works offline.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "Macro-averaged F1 over classes, for single-label (class indices) or multi-label (0/1 vectors) data."

_KWARGS_DESCRIPTION = """
Args:
    predictions: class indices (`list[int]`), or 0/1 vectors (`list[list[int]]`) with config "multilabel".
    references: same format as predictions.
    num_classes (`int`, *optional*): number of classes (single-label); absent classes then count with F1 = 0.
Returns:
    macro_f1 (`float`): in [0, 1].
Example:
    >>> metric = evaluate.load("examples/metrics/macro_f1.py")
    >>> metric.compute(predictions=[0, 1, 1], references=[0, 1, 0])
    {'macro_f1': 0.6666666666666666}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MacroF1(evaluate.Metric):
    def _info(self):
        if self.config_name == "multilabel":
            features = datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("int64")),
                    "references": datasets.Sequence(datasets.Value("int64")),
                }
            )
        else:
            features = datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            )
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation="", inputs_description=_KWARGS_DESCRIPTION, features=features
        )

    def _compute(self, predictions, references, num_classes=None):
        predictions = np.asarray(predictions)
        references = np.asarray(references)
        if predictions.size == 0:
            raise ValueError("macro_f1 needs at least one prediction.")
        if predictions.ndim == 1:  # class indices -> one-hot
            n = int(num_classes) if num_classes else int(max(predictions.max(), references.max())) + 1
            predictions = np.eye(n, dtype=np.int64)[predictions]
            references = np.eye(n, dtype=np.int64)[references]
            keep = np.ones(n, dtype=bool) if num_classes else (predictions.any(0) | references.any(0))
        else:
            keep = predictions.any(0) | references.any(0)
        tp = (predictions * references).sum(0)
        fp = (predictions * (1 - references)).sum(0)
        fn = ((1 - predictions) * references).sum(0)
        denominator = 2 * tp + fp + fn
        f1 = np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)
        return {"macro_f1": float(f1[keep].mean()) if keep.any() else 0.0}
