# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""hf-axlstm: Audio xLSTM (AxLSTM) for the Hugging Face ecosystem."""
