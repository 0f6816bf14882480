# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""Accuracy: the fraction of predicted class indices equal to the reference class indices.

A local `evaluate` metric script, so `evaluate.load("examples/metrics/accuracy.py")` works offline.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "Fraction of examples whose predicted class index equals the reference class index."

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[int]`): predicted class indices.
    references (`list[int]`): reference class indices.
Returns:
    accuracy (`float`): in [0, 1].
Example:
    >>> metric = evaluate.load("examples/metrics/accuracy.py")
    >>> metric.compute(predictions=[0, 1, 1], references=[0, 1, 0])
    {'accuracy': 0.6666666666666666}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references):
        predictions = np.asarray(predictions)
        references = np.asarray(references)
        if predictions.size == 0:
            raise ValueError("accuracy needs at least one prediction.")
        return {"accuracy": float((predictions == references).mean())}
