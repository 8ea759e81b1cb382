"""Autoencoder baselines: do the published models that rival EASE beat it on this problem?

Trains Mult-DAE and Mult-VAE (Liang et al., "Variational Autoencoders for Collaborative
Filtering", WWW 2018) on the train split of a finished local run, and ranks the
RetrievalEvaluator's eval users and pairs with them, with the Evaluator's own modules
(same users, pairs and train exclusions as the model and EASE). Each user's input is
their whole train history (a multi-hot row, L2-normalized, dropout in training); the
output is a full softmax over the catalog (multinomial likelihood, no sampling).

  mult_dae     600 tanh units, a 200-d code, 600 tanh units, the catalog softmax
  linear_dae   the same with no hidden layers and a 128-d code: the history
               tower's shape (a pooled history, one projection, a dot product with
               movie vectors), trained on whole histories with the full softmax
  mult_vae     mult_dae with a Gaussian code and KL weight annealed to --vae_beta

Every --eval_every epochs it prints hit_rate@10 and hit_rate@100 (train movies excluded),
then the best row. The best epoch is chosen on the eval split itself, so it is an upper
bound on what early stopping would pick. Both tables go to docs/benchmarks/
autoencoder_baselines-<data set>.md (autoencoder_baselines.md on the built-in data;
benchmarks/results.py).

  python local_runner.py --data_dir ../shared/data/ml-latest-small --pipeline_root /tmp/mls
  python benchmarks/autoencoder_baselines.py --pipeline_root /tmp/mls
"""
import time
from typing import Dict, List, Tuple

from absl import app
from absl import flags

import pipeline_outputs
import results
from components.retrieval_evaluator import data
from closed_form import ease

import numpy as np  # pylint: disable=g-bad-import-order
import tensorflow as tf  # pylint: disable=g-bad-import-order

_ROOT = flags.DEFINE_string("pipeline_root", "tfx_root", "Root of a finished local run.")
_MODELS = flags.DEFINE_list("models", ["mult_dae", "linear_dae", "mult_vae"],
                            "Models to train: mult_dae, linear_dae, mult_vae.")
_EPOCHS = flags.DEFINE_integer("epochs", 80, "Training epochs (passes over the users).")
_EVAL_EVERY = flags.DEFINE_integer("eval_every", 10, "Rank the eval users every N epochs.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "Users per step.")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", 1e-3, "Adam's learning rate.")
_DROPOUT = flags.DEFINE_float("dropout", 0.5, "Input dropout in training.")
_VAE_BETA = flags.DEFINE_float("vae_beta", 0.2, "Mult-VAE's KL weight after annealing.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the weights, dropout and user order.")

# (hidden units or 0 for none, code size, variational) of each model.
_SHAPES = {"mult_dae": (600, 200, False), "linear_dae": (0, 128, False),
           "mult_vae": (600, 200, True)}


class _Autoencoder(tf.keras.Model):
  """Multi-hot history -> catalog logits, with an optional Gaussian code."""

  def __init__(self, num_movies: int, hidden: int, code: int, variational: bool):
    super().__init__()
    self._variational = variational
    self._encoder = [tf.keras.layers.Dense(hidden, "tanh")] if hidden else []
    self._mean = tf.keras.layers.Dense(code)
    self._log_variance = tf.keras.layers.Dense(code) if variational else None
    self._decoder = [tf.keras.layers.Dense(hidden, "tanh")] if hidden else []
    self._logits = tf.keras.layers.Dense(num_movies)

  def call(self, rows: tf.Tensor, training: bool = False) -> Tuple[tf.Tensor, tf.Tensor]:
    """Returns (logits [B, M], the KL term, 0 unless variational)."""
    hidden = tf.math.l2_normalize(rows, axis=1)
    if training:
      hidden = tf.nn.dropout(hidden, _DROPOUT.value)
    for layer in self._encoder:
      hidden = layer(hidden)
    code, kl = self._mean(hidden), tf.constant(0.0)
    if self._variational:
      log_variance = self._log_variance(hidden)
      kl = tf.reduce_mean(tf.reduce_sum(
          0.5 * (tf.exp(log_variance) + code ** 2 - 1 - log_variance), axis=1))
      if training:
        code += tf.exp(0.5 * log_variance) * tf.random.normal(tf.shape(code))
    for layer in self._decoder:
      code = layer(code)
    return self._logits(code), kl


def _train_and_rank(name: str, eval_data: data.EvalData,
                    num_movies: int) -> List[Tuple[int, Dict[str, float]]]:
  """(epoch, hit rates) every --eval_every epochs for one model."""
  tf.random.set_seed(_SEED.value)
  rng = np.random.default_rng(_SEED.value)
  # Sparse rows, made dense a batch at a time.
  train = ease.binary_matrix(eval_data.all_train_users, eval_data.all_train_movies,
                             eval_data.num_train_users, num_movies, np.float32)
  queries = ease.binary_matrix(eval_data.train_users, eval_data.train_movies,
                               len(eval_data.user_ids), num_movies, np.float32)
  model = _Autoencoder(num_movies, *_SHAPES[name])
  optimizer = tf.keras.optimizers.Adam(_LEARNING_RATE.value)
  num_users = train.shape[0]
  steps_per_epoch = -(-num_users // _BATCH_SIZE.value)
  anneal_steps = 0.5 * _EPOCHS.value * steps_per_epoch  # KL weight reaches beta halfway.

  @tf.function
  def step(rows: tf.Tensor, beta: tf.Tensor) -> None:
    with tf.GradientTape() as tape:
      logits, kl = model(rows, training=True)
      loss = -tf.reduce_mean(tf.reduce_sum(tf.nn.log_softmax(logits) * rows, axis=1))
      loss += beta * kl
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))

  rates, steps = [], 0
  for epoch in range(1, _EPOCHS.value + 1):
    order = rng.permutation(num_users)
    for start in range(0, len(order), _BATCH_SIZE.value):
      steps += 1
      beta = _VAE_BETA.value * min(1.0, steps / anneal_steps)
      step(tf.constant(train[order[start:start + _BATCH_SIZE.value]].toarray()),
           tf.constant(beta, tf.float32))
    if epoch % _EVAL_EVERY.value == 0 or epoch == _EPOCHS.value:
      score = lambda rows: model(tf.constant(queries[rows].toarray()))[0].numpy()
      rate = pipeline_outputs.hit_rates(score, eval_data, num_movies)
      rates.append((epoch, rate))
      print(f"{name:<12} {epoch:>5} {rate['hit_rate@10']:>7.4f} {rate['hit_rate@100']:>8.4f}",
            flush=True)
  return rates


def main(argv):
  del argv
  unknown = set(_MODELS.value) - set(_SHAPES)
  if unknown:
    raise app.UsageError(f"Unknown --models {sorted(unknown)}; choose from {sorted(_SHAPES)}.")
  name = results.results_name(__file__, results.run_data_set(_ROOT.value))
  _, catalog, eval_data = pipeline_outputs.evaluation_problem(_ROOT.value)
  print(f"{len(eval_data.user_ids)} eval users, {len(eval_data.eval_users)} eval pairs, "
        f"{eval_data.num_train_users} train users, {len(catalog)} movies")
  print(f"{'model':<12} {'epoch':>5} {'hit@10':>7} {'hit@100':>8}")
  best, every_epoch = {}, []
  for model in _MODELS.value:
    start = time.perf_counter()
    rates = _train_and_rank(model, eval_data, len(catalog))
    every_epoch += [[model, epoch, f"{rate['hit_rate@10']:.4f}",
                     f"{rate['hit_rate@100']:.4f}"] for epoch, rate in rates]
    epoch, rate = max(rates, key=lambda pair: pair[1]["hit_rate@100"])
    best[model] = (epoch, rate, time.perf_counter() - start)
  print("best epoch of each (chosen on the eval split: an upper bound):")
  for model, (epoch, rate, seconds) in best.items():
    print(f"{model:<12} {epoch:>5} {rate['hit_rate@10']:>7.4f} {rate['hit_rate@100']:>8.4f}"
          f"  ({seconds:.0f} s)")
  header = ["model", "epoch", "hit_rate@10", "hit_rate@100"]
  results.write(name, "Autoencoder baselines against EASE's problem", [
      ("Best epoch of each",
       f"{len(eval_data.user_ids):,} eval users, {len(eval_data.eval_users):,} eval pairs, "
       f"{len(catalog):,} movies; {_EPOCHS.value} epochs, seed {_SEED.value}. The best epoch "
       "is chosen on the eval split itself: an upper bound. Train movies excluded.\n\n"
       + results.table(header + ["train s"],
                       [[model, epoch, f"{rate['hit_rate@10']:.4f}",
                         f"{rate['hit_rate@100']:.4f}", f"{seconds:.0f}"]
                        for model, (epoch, rate, seconds) in best.items()])),
      ("Every evaluated epoch", results.table(header, every_epoch)),
  ])


if __name__ == "__main__":
  app.run(main)
