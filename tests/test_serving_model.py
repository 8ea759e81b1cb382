"""The serving model's TensorFlow order key against the numpy one the Evaluator uses."""
import numpy as np
import pytest
import tensorflow as tf

from ranking_core import scores as scores_lib
from trainer_module import serving_model


@pytest.mark.parametrize("weight", [0.0, 0.3, 1.0])
def test_the_served_order_key_is_the_evaluators_over_the_valid_entries(weight):
  rng = np.random.default_rng(7)
  rows, width = 12, 9
  scores = rng.normal(size=(rows, width)).astype(np.float32)
  ratings = rng.uniform(0.5, 5.0, size=(rows, width)).astype(np.float32)
  valid = rng.random((rows, width)) < 0.7
  valid[0] = True  # A full row,
  valid[1] = False
  valid[1, 4] = True  # one valid entry,
  valid[2, :3] = True
  ratings[2, :3] = 4.0  # and equal ratings: std 0, kept finite by STD_EPSILON.
  # Invalid entries hold values far off the valid ones: they must not move the key.
  scores[~valid] = 1e3
  ratings[~valid] = -1e3

  served = serving_model.ranked_order_key(tf.constant(scores), tf.constant(ratings),
                                          tf.constant(valid), weight).numpy()
  for row in range(rows):
    kept = valid[row]
    expected = scores_lib.ranked_order_key(scores[row:row + 1, kept], ratings[row:row + 1, kept],
                                           weight)[0]
    np.testing.assert_allclose(served[row, kept], expected, rtol=1e-5, atol=1e-5)
    assert (np.argsort(-served[row, kept], kind="stable").tolist()
            == np.argsort(-expected, kind="stable").tolist())
