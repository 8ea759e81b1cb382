"""User code of Transform and Trainer: the preprocessing_fn, the TFRS towers and model, the
Trainer's run_fn by stage (data, training, validation, EASE factor, ranking stage, export)
and the recommend CLI. docs/architecture.md lists the modules.

TF 2.16 defaults to Keras 3; TFRS 0.7 needs Keras 2 (tf-keras). The switch must be made
before TensorFlow is first imported, so every package of this project sets it on import.
"""
import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
