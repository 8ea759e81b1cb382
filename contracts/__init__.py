"""The ground floor: contracts every other package reads and none of them owns.

features   the feature spec (raw and transformed names, roles, parsing and serving specs)
configs    every knob, with its default and allowed values
artifacts  artifact keys, split names, the Model and evaluation artifact layouts
progress   the logger whose messages a run shows on the terminal

Imports nothing of the project. TF 2.16 defaults to Keras 3; TFRS 0.7 needs Keras 2
(tf-keras). The switch must be made before TensorFlow is first imported, so every package
of this project sets it on import.
"""
import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
