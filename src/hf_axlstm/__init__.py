# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""hf-axlstm: Audio xLSTM (AxLSTM) for the Hugging Face ecosystem, with the paper's SSAST baseline.

Importing the package registers AxLSTM and SSAST with the transformers Auto classes (`AutoConfig`, `AutoModel`,
`AutoModelForPreTraining`, `AutoModelForAudioClassification`, `AutoFeatureExtractor`), so
`AutoModel.from_pretrained(folder)` works for every folder whose `config.json` says `"model_type": "axlstm"` or
`"ssast"`.
"""

from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForAudioClassification,
    AutoModelForPreTraining,
)

from .configuration_axlstm import AXLSTM_PRESETS, AxLSTMConfig
from .configuration_ssast import SSAST_PRESETS, SSASTConfig
from .feature_extraction_axlstm import AxLSTMFeatureExtractor
from .modeling_axlstm import (
    AxLSTMForAudioClassification,
    AxLSTMForPreTraining,
    AxLSTMForPreTrainingOutput,
    AxLSTMModel,
    AxLSTMModelOutput,
    AxLSTMPreTrainedModel,
)
from .modeling_ssast import SSASTForAudioClassification, SSASTForPreTraining, SSASTModel, SSASTPreTrainedModel

__version__ = "0.1.0"

AutoConfig.register("axlstm", AxLSTMConfig, exist_ok=True)
AutoModel.register(AxLSTMConfig, AxLSTMModel, exist_ok=True)
AutoModelForPreTraining.register(AxLSTMConfig, AxLSTMForPreTraining, exist_ok=True)
AutoModelForAudioClassification.register(AxLSTMConfig, AxLSTMForAudioClassification, exist_ok=True)
AutoFeatureExtractor.register(AxLSTMConfig, AxLSTMFeatureExtractor, exist_ok=True)
AutoConfig.register("ssast", SSASTConfig, exist_ok=True)
AutoModel.register(SSASTConfig, SSASTModel, exist_ok=True)
AutoModelForPreTraining.register(SSASTConfig, SSASTForPreTraining, exist_ok=True)
AutoModelForAudioClassification.register(SSASTConfig, SSASTForAudioClassification, exist_ok=True)
AutoFeatureExtractor.register(SSASTConfig, AxLSTMFeatureExtractor, exist_ok=True)

__all__ = [
    "AXLSTM_PRESETS",
    "AxLSTMConfig",
    "AxLSTMFeatureExtractor",
    "AxLSTMForAudioClassification",
    "AxLSTMForPreTraining",
    "AxLSTMForPreTrainingOutput",
    "AxLSTMModel",
    "AxLSTMModelOutput",
    "AxLSTMPreTrainedModel",
    "SSAST_PRESETS",
    "SSASTConfig",
    "SSASTForAudioClassification",
    "SSASTForPreTraining",
    "SSASTModel",
    "SSASTPreTrainedModel",
]
