"""Serving benchmark: latency and throughput of the pushed BruteForce SavedModel.

Loads the model with tf.saved_model.load and calls its signatures in this process: the
same graph TF Serving runs, without the RPC, (de)serialization and batching overhead of
a server. Measures
  * single-user latency of `serving_default` (one user per call, --num_calls calls over
    the model's training users from assets.extra/seen_movie_ids.tsv.gz, plus a share of
    unknown ids): p50/p95/p99 ms, each call including the input tensor's creation and
    the outputs' copy to numpy;
  * batched throughput of `serving_default` at --batch_sizes: users/s;
  * single-user latency of `serving_exclude_seen`, each user excluding its seen movies;
  * single-user latency of `serving_with_context`: a user the model never saw, with a
    known user's rated movies (at most --history_length) as the history;
  * with a ranking stage (--ranking_model dcn), single-user latency of `serving_ranked`
    (retrieval, then the DCN on each of the `ranking_candidates` retrieved movies) and
    of `serving_ranked_with_context` (the same, from a history as above).

The figures are printed and written to docs/benchmarks/serving_benchmark.md, or
serving_benchmark-<data set>.md for a model trained on another data set than the built-in
one, read from its pipeline root's ML Metadata or named with --data_set
(benchmarks/results.py).

  python benchmarks/serving_benchmark.py [--model_dir tfx_root/serving_model]
"""
import os
import random
import time
from typing import Callable, Dict, List, Sequence

from absl import app
from absl import flags
import numpy as np

import results
import trainer_module  # pylint: disable=unused-import  # Sets TF_USE_LEGACY_KERAS first.
from contracts import serving
from trainer_module import artifact_files
from trainer_module import recommend

import tensorflow as tf  # pylint: disable=g-import-not-at-top,g-bad-import-order

P50_TARGET_MS = 5.0
THROUGHPUT_TARGET_USERS_PER_S = 20_000

_MODEL_DIR = flags.DEFINE_string(
    "model_dir", os.path.join("tfx_root", "serving_model"),
    "TF Serving base directory (highest version is used) or SavedModel directory.")
_NUM_CALLS = flags.DEFINE_integer("num_calls", 1000, "Timed single-user calls.")
_UNKNOWN_FRACTION = flags.DEFINE_float(
    "unknown_fraction", 0.05, "Share of single-user calls with an id the model never saw.")
_WARMUP_CALLS = flags.DEFINE_integer("warmup_calls", 50, "Untimed calls per signature.")
_BATCH_SIZES = flags.DEFINE_list("batch_sizes", ["256", "1024", "4096"],
                                 "Batch sizes of the throughput measurement.")
_MIN_BATCH_SECONDS = flags.DEFINE_float(
    "min_batch_seconds", 3.0, "Time each batch size at least this long.")
_EXCLUDE_SEEN_CALLS = flags.DEFINE_integer(
    "exclude_seen_calls", 300, "Timed single-user calls of serving_exclude_seen.")
_RANKED_CALLS = flags.DEFINE_integer(
    "ranked_calls", 300, "Timed single-user calls of serving_ranked (models with a ranking "
    "stage).")
_HISTORY_LENGTH = flags.DEFINE_integer(
    "history_length", 50, "Movies in each history of the serving_with_context calls.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the user order.")

Signature = Callable[..., Dict[str, tf.Tensor]]


def request_users(known: Sequence[str], count: int, unknown_fraction: float,
                  seed: int) -> List[str]:
  """`count` user ids: known ones in a shuffled cycle, a share replaced by unknown ids."""
  rng = random.Random(seed)
  order = list(known)
  rng.shuffle(order)
  users = [order[i % len(order)] for i in range(count)] if order else ["?"] * count
  num_unknown = round(count * unknown_fraction) if order else count
  for n, position in enumerate(rng.sample(range(count), num_unknown)):
    users[position] = f"benchmark-unknown-user-{n}"
  return users


def _fetch(outputs: Dict[str, tf.Tensor]) -> None:
  for value in outputs.values():
    value.numpy()


def single_user_latencies_ms(call: Callable[[str], Dict[str, tf.Tensor]],
                             users: Sequence[str]) -> np.ndarray:
  """Milliseconds of `call(user)` for each user, outputs fetched."""
  latencies = np.empty(len(users))
  for i, user in enumerate(users):
    start = time.perf_counter()
    _fetch(call(user))
    latencies[i] = time.perf_counter() - start
  return latencies * 1e3


def batch_throughput(signature: Signature, users: Sequence[str], batch_size: int,
                     min_seconds: float) -> float:
  """Users per second of `signature` on batches of `batch_size` users."""
  batch = tf.constant([users[i % len(users)] for i in range(batch_size)])
  _fetch(signature(user_id=batch))  # Warm-up: first allocations at this size.
  calls, start = 0, time.perf_counter()
  while True:
    _fetch(signature(user_id=batch))
    calls += 1
    elapsed = time.perf_counter() - start
    if elapsed >= min_seconds and calls >= 3:
      return calls * batch_size / elapsed


def _percentiles(latencies_ms: np.ndarray) -> Dict[int, float]:
  return {p: float(np.percentile(latencies_ms, p)) for p in (50, 95, 99)}


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  results_file = results.results_name(__file__, results.run_data_set(_MODEL_DIR.value))
  model_dir = recommend.resolve_model_dir(_MODEL_DIR.value)
  load_start = time.perf_counter()
  model = tf.saved_model.load(model_dir)
  load_seconds = time.perf_counter() - load_start
  serve = model.signatures[serving.SERVING_DEFAULT]
  exclude_seen = model.signatures[serving.SERVING_EXCLUDE_SEEN]
  seen = artifact_files.read_seen_movies(model_dir)
  users = request_users(sorted(seen), _NUM_CALLS.value, _UNKNOWN_FRACTION.value,
                        _SEED.value)
  num_unknown = sum(user not in seen for user in users)
  print(f"Serving benchmark, {os.cpu_count()} CPUs, TF {tf.__version__}, model {model_dir}")
  print("Note: in-process TF (tf.saved_model.load, the same graph TF Serving runs), "
        "without RPC overhead.")
  print(f"model load time: {load_seconds:.2f} s")
  print(f"known users in the model: {len(seen)}; single-user calls: {len(users)} "
        f"({len(set(users) - set(seen))} distinct unknown ids, {num_unknown} calls)")
  rows = [["model load time", f"{load_seconds:.2f} s", "", ""]]

  def call_default(user: str) -> Dict[str, tf.Tensor]:
    return serve(user_id=tf.constant([user]))

  def call_exclude_seen(user: str) -> Dict[str, tf.Tensor]:
    return exclude_seen(user_id=tf.constant([user]),
                        exclude_movie_ids=tf.constant([seen.get(user) or [""]]))

  single_user_latencies_ms(call_default, users[:_WARMUP_CALLS.value])
  latency = _percentiles(single_user_latencies_ms(call_default, users))
  for p, value in latency.items():
    target = (f" (target <= {P50_TARGET_MS:g} ms, "
              f"{'met' if value <= P50_TARGET_MS else 'MISSED'})") if p == 50 else ""
    print(f"serving_default single-user latency p{p}: {value:.2f} ms{target}")
    rows.append([f"serving_default, one user per call, p{p}", f"{value:.2f} ms",
                 f"<= {P50_TARGET_MS:g} ms" if p == 50 else "",
                 ("met" if value <= P50_TARGET_MS else "MISSED") if p == 50 else ""])

  for batch_size in [int(b) for b in _BATCH_SIZES.value]:
    rate = batch_throughput(serve, users, batch_size, _MIN_BATCH_SECONDS.value)
    verdict = "met" if rate >= THROUGHPUT_TARGET_USERS_PER_S else "MISSED"
    print(f"serving_default batch_size={batch_size} throughput: {rate:,.0f} users/s "
          f"({batch_size / rate * 1e3:.1f} ms per batch; target >= "
          f"{THROUGHPUT_TARGET_USERS_PER_S:,} users/s, {verdict})")
    rows.append([f"serving_default, batches of {batch_size:,} users",
                 f"{rate:,.0f} users/s ({batch_size / rate * 1e3:.1f} ms per batch)",
                 f">= {THROUGHPUT_TARGET_USERS_PER_S:,} users/s", verdict])

  exclude_users = users[:_EXCLUDE_SEEN_CALLS.value]
  single_user_latencies_ms(call_exclude_seen, exclude_users[:_WARMUP_CALLS.value])
  excluded = _percentiles(single_user_latencies_ms(call_exclude_seen, exclude_users))
  mean_seen = np.mean([len(seen.get(user, [])) for user in exclude_users])
  print(f"serving_exclude_seen single-user latency p50: {excluded[50]:.2f} ms "
        f"({len(exclude_users)} calls, {mean_seen:.0f} excluded movies per user on average)")
  print(f"serving_exclude_seen single-user latency p95: {excluded[95]:.2f} ms")
  rows.append([f"serving_exclude_seen, one user per call ({mean_seen:.0f} excluded movies "
               "on average), p50 / p95", f"{excluded[50]:.2f} / {excluded[95]:.2f} ms",
               "", ""])

  def with_history(signature: Signature) -> Callable[[str], Dict[str, tf.Tensor]]:
    """Calls `signature` as an unknown user whose history is `user`'s rated movies."""
    return lambda user: signature(
        user_id=tf.constant(["unknown-" + user]),
        context_movie_ids=tf.constant([seen.get(user, [""])[:_HISTORY_LENGTH.value] or [""]]))

  timed = {serving.SERVING_WITH_CONTEXT: (
      with_history(model.signatures[serving.SERVING_WITH_CONTEXT]),
      users[:_EXCLUDE_SEEN_CALLS.value])}
  if serving.SERVING_RANKED in model.signatures:
    ranked_users = users[:_RANKED_CALLS.value]
    ranked = model.signatures[serving.SERVING_RANKED]
    timed[serving.SERVING_RANKED] = (lambda user: ranked(user_id=tf.constant([user])),
                                    ranked_users)
    timed[serving.SERVING_RANKED_WITH_CONTEXT] = (
        with_history(model.signatures[serving.SERVING_RANKED_WITH_CONTEXT]), ranked_users)
  for name, (call, timed_users) in timed.items():
    single_user_latencies_ms(call, timed_users[:_WARMUP_CALLS.value])
    latency = _percentiles(single_user_latencies_ms(call, timed_users))
    print(f"{name} single-user latency p50: {latency[50]:.2f} ms, p95: "
          f"{latency[95]:.2f} ms ({len(timed_users)} calls)")
    rows.append([f"{name}, one user per call ({len(timed_users)} calls), p50 / p95",
                 f"{latency[50]:.2f} / {latency[95]:.2f} ms", "", ""])
  results.write(results_file, "Serving benchmark", [(
      "Latency and throughput",
      f"In-process TF {tf.__version__} (tf.saved_model.load, the graph TF Serving runs, "
      f"without RPC overhead); {len(seen):,} known users, {len(users):,} single-user calls "
      f"of which {num_unknown} with an unknown id.\n\n"
      + results.table(["measure", "value", "target", "verdict"], rows))])


if __name__ == "__main__":
  app.run(main)
