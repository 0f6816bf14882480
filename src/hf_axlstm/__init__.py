# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""hf-axlstm: Audio xLSTM (AxLSTM) for the Hugging Face ecosystem, with the paper's SSAST baseline.

Importing the package registers AxLSTM and SSAST with the transformers Auto classes (`AutoConfig`, `AutoModel`,
`AutoModelForPreTraining`, `AutoModelForAudioClassification`, `AutoFeatureExtractor`, `AutoProcessor`), so
`AutoModel.from_pretrained(folder)` works for every folder whose `config.json` says `"model_type": "axlstm"` or
`"ssast"`, and `AutoProcessor` / `AutoFeatureExtractor` use the installed extractor with no remote-code prompt. It also
makes `pipeline("audio-classification")` build `AxLSTMAudioClassificationPipeline` for these models (files, bytes and
other sampling rates decoded with soundfile and resampled here: no ffmpeg or torchaudio; see `pipeline_axlstm`).
"""

from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForAudioClassification,
    AutoModelForPreTraining,
    AutoProcessor,
)

from . import cpu_kernels  # noqa: F401 - registers the "fused_cpu" mixer implementation (built on first use)
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
from .pipeline_axlstm import AxLSTMAudioClassificationPipeline, register_pipeline

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
# Without these, AutoProcessor finds no processor class, tries AutoImageProcessor, which reads the saved extractor's
# auto_map as remote image-processor code and asks "Do you wish to run the custom code? [y/N]".
AutoProcessor.register(AxLSTMConfig, AxLSTMFeatureExtractor, exist_ok=True)
AutoProcessor.register(SSASTConfig, AxLSTMFeatureExtractor, exist_ok=True)
register_pipeline()

__all__ = [
    "AXLSTM_PRESETS",
    "AxLSTMAudioClassificationPipeline",
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
