# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""Bad inputs to the models (AxLSTMModel, AxLSTMForPreTraining, AxLSTMForAudioClassification)."""

from __future__ import annotations

CASES: list = []
