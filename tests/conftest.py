"""Shared pytest set-up: Keras 2 for TFRS, quiet TensorFlow logs."""
import os

# Must precede the first TensorFlow import of the test process (TFRS needs Keras 2).
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
