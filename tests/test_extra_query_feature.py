"""Adding a query feature is a change to the spec, preprocessing_fn and one tower.

The contracts promise (docs/architecture.md, "Where each kind of change goes") that a new
query feature touches only the feature spec, `preprocessing.py` and the tower that reads
it. This test holds the code to that promise: it adds `hour_of_day` (the hour, 0-23, of
the query's timestamp) by patching exactly those three places,

  * the spec: a transformed feature name, `features.HOUR_OF_DAY`,
  * `preprocessing.preprocessing_fn`: one more output,
  * the `user_id` query tower: an hour-of-day embedding in its input,

and then runs the real Transform (tests/transform_fixtures.py), the Trainer's `run_fn` and
its serving export unchanged. The feature must appear in the Transform output, be trained
in the tower, and reach the serving signatures through the embedded Transform graph.
"""
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx

from contracts import features
from contracts import serving as serving_lib
from tests import transform_fixtures
from trainer_module import inputs
from trainer_module import preprocessing
from trainer_module import query_towers
from trainer_module import trainer

HOUR_OF_DAY = features.transformed_name("hour_of_day")
_SECONDS_PER_HOUR = 3600
_SECONDS_PER_DAY = 24 * _SECONDS_PER_HOUR
_SERVING_DIR = "Format-Serving"  # TFX path_utils: the serving model in a Model artifact.
_original_preprocessing_fn = preprocessing.preprocessing_fn


def _preprocessing_with_hour(inputs, custom_config=None):
  """The stock preprocessing_fn plus the hour of day of the timestamp (UTC)."""
  outputs = _original_preprocessing_fn(inputs, custom_config)
  seconds = features.to_vector(inputs[features.TIMESTAMP])
  outputs[HOUR_OF_DAY] = tf.math.floormod(seconds // _SECONDS_PER_HOUR, 24)
  return outputs


class _HourAwareUserIdTower(query_towers.UserIdQueryTower):
  """The user_id tower with an hour-of-day embedding beside the user and time parts."""

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    self.hour_of_day = tf.keras.layers.Embedding(24, 8, name="hour_of_day")

  def call(self, inputs):
    hour = self.hour_of_day(features.to_vector(inputs[HOUR_OF_DAY]))
    return self.projection(tf.concat(self.user_and_time(inputs) + [hour], axis=1))


@pytest.fixture(scope="module")
def extended(tmp_path_factory):
  """(fixture data, Model artifact dir) of the pipeline with the extra feature patched in."""
  root = str(tmp_path_factory.mktemp("hour_of_day"))
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(features, "HOUR_OF_DAY", HOUR_OF_DAY, raising=False)
    patch.setattr(preprocessing, "preprocessing_fn", _preprocessing_with_hour)
    patch.setattr(query_towers, "UserIdQueryTower", _HourAwareUserIdTower)
    fixture_data = transform_fixtures.build(os.path.join(root, "data"))
    model_uri = os.path.join(root, "model")
    trainer.run_fn(tfx.components.FnArgs(
        train_files=[fixture_data.transformed_train_pattern],
        eval_files=[fixture_data.transformed_validation_pattern],
        transform_output=fixture_data.transform_output,
        serving_model_dir=os.path.join(model_uri, _SERVING_DIR),
        model_run_dir=os.path.join(root, "model_run"),
        custom_config=fixture_data.custom_config(
            {"query_tower": "user_id", "embedding_dim": 16, "batch_size": 128, "epochs": 2,
             "serving_top_k": 10, "seed": 7})))
  return fixture_data, model_uri


def test_the_transform_graph_outputs_the_hour_of_each_rating(extended):
  fixture_data, _ = extended
  tft_output = tft.TFTransformOutput(fixture_data.transform_output)
  assert HOUR_OF_DAY in tft_output.transformed_feature_spec()
  transformed = inputs.read_all([fixture_data.transformed_train_pattern], tft_output,
                                max_title_tokens=16)
  seconds = transformed[features.TIMESTAMP_SECONDS].numpy().reshape(-1)
  hours = transformed[HOUR_OF_DAY].numpy().reshape(-1)
  np.testing.assert_array_equal(hours, (seconds // _SECONDS_PER_HOUR) % 24)
  assert len(set(hours.tolist())) > 1


def test_the_serving_model_answers_by_the_hour_of_the_query(extended):
  fixture_data, model_uri = extended
  serving = tf.saved_model.load(os.path.join(model_uri, _SERVING_DIR))
  at_time = serving.signatures[serving_lib.SERVING_AT_TIME]
  # The signature's inputs are still the raw query features: the new feature is computed
  # from the timestamp by the Transform graph inside the serving model.
  assert set(at_time.structured_input_signature[1]) == set(features.REQUEST_QUERY_FEATURES)
  # Far past the training range the clipped time features stop moving, so whatever still
  # changes the answer there is the hour of day.
  latest = int(fixture_data.train.timestamps.max())
  midnight = (latest // _SECONDS_PER_DAY + 400) * _SECONDS_PER_DAY
  user = fixture_data.train.user_ids[0]

  def scores(timestamp):
    return at_time(user_id=tf.constant([user]),
                   timestamp=tf.constant([timestamp], tf.int64))["score"].numpy()

  at_midnight, at_noon = scores(midnight), scores(midnight + 12 * _SECONDS_PER_HOUR)
  assert not np.allclose(at_midnight, at_noon, atol=1e-5)
  np.testing.assert_allclose(scores(midnight + 30 * _SECONDS_PER_DAY), at_midnight,
                             rtol=1e-5, atol=1e-6)


def test_the_trained_tower_holds_the_hour_embedding(extended):
  _, model_uri = extended
  checkpoint = os.path.join(model_uri, _SERVING_DIR, "variables", "variables")
  # Keras checkpoints name a model's variables by position; the table is the one [24, 8].
  tower_shapes = [shape for name, shape in tf.train.list_variables(checkpoint)
                  if "/query_tower/" in name]
  assert tower_shapes.count([24, 8]) == 1, tower_shapes
