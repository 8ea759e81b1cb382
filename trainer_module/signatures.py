"""The TensorFlow side of the serving contract (contracts/serving.py): signatures that take
raw features by name, the batch-size check every request passes, and "" padding."""
from typing import Any, Callable, Dict, Mapping, Sequence

import tensorflow as tf

from contracts import features
from contracts import serving

# The extra input of the exclude_seen signatures (serving.EXCLUDING_SIGNATURES).
EXCLUDE_SPEC = tf.TensorSpec([None, None], tf.string, name=serving.EXCLUDE_MOVIE_IDS)

QueryFn = Callable[[Dict[str, tf.Tensor]], Dict[str, tf.Tensor]]


def query_signature(fn: QueryFn, names: Sequence[str],
                    extra_specs: Sequence[tf.TensorSpec] = ()) -> Any:
  """A serving signature taking the named raw features (and `extra_specs`) as inputs.

  The signature's input keys are the feature names; `fn` receives them as one dict, once
  their batch sizes are checked (`check_same_batch`: the request's inputs, before any
  default is filled in) and the ids among them stripped of surrounding whitespace
  (serving.ID_INPUTS: " 42" is user "42", as in the data and the recommend CLI).

  Returns:
    The concrete function, for `tf.saved_model.save(..., signatures=...)`.
  """
  specs = features.serving_specs(names) + tuple(extra_specs)
  keys = tuple(spec.name for spec in specs)

  # Traced as written (no tensor-dependent Python control flow): AutoGraph would convert
  # every tf_keras function the towers reach (model.RetrievalModel.train_step says why).
  @tf.function(input_signature=specs, autograph=False)
  def signature(*values):
    inputs = dict(zip(keys, values))
    check_same_batch(inputs)
    return fn(strip_ids(inputs))

  return signature.get_concrete_function()


def strip_ids(inputs: Mapping[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
  """`inputs` with the ids (serving.ID_INPUTS) stripped of surrounding whitespace; a
  padding value of spaces becomes "", padding."""
  return {name: tf.strings.strip(value) if name in serving.ID_INPUTS else value
          for name, value in inputs.items()}


def check_same_batch(inputs: Mapping[str, tf.Tensor]) -> None:
  """Raises InvalidArgumentError naming the inputs when their batch sizes differ.

  Without this a mismatch surfaces as an internal ConcatOp message, or worse, a one-row
  input is silently broadcast to every row of the others.
  """
  names = sorted(inputs)
  sizes = tf.stack([tf.shape(inputs[name], out_type=tf.int64)[0] for name in names])
  tf.debugging.assert_equal(
      sizes, tf.fill(tf.shape(sizes), sizes[0]),
      message=f"Serving inputs {', '.join(names)} must have the same batch size (first "
      "dimension); got, in that order")


def without_padding(values: tf.Tensor) -> tf.RaggedTensor:
  """A serving input's string lists [batch, n], rows padded with "", without the padding
  (wherever it is in a row)."""
  return tf.ragged.boolean_mask(values, tf.not_equal(values, ""))
