"""Training under tf.distribute: the cross-replica retrieval task, the strategy from
TF_CONFIG, the chief, the workers' save directories, DATA sharding.

Several replicas need the CPU split into logical devices before TensorFlow initializes
its devices, which this test process has done already: the replica checks run in a
subprocess (`python -m tests.test_distribution replicas OUT`, 2 logical CPUs and
MirroredStrategy), the multi-worker check in two (`... worker OUT`, one per TF_CONFIG
task of a localhost cluster), each under a timeout; the tests compare what they write.
"""
import json
import os
import socket
import subprocess
import sys
import time
import types
from typing import Any, Dict, List, Sequence

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_recommenders as tfrs

from contracts import configs
from contracts import features
from trainer_module import distribution
from trainer_module import model as model_lib
from trainer_module import towers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPERATURE = 0.2
DIM = 4
# Rows per replica of the task checks: equal, a partial last batch, a replica without rows.
SPLITS = ((3, 3), (4, 3), (5, 0))
SIZES = model_lib.VocabularySizes(users=7, movies=9, title_tokens=11, genres=5,
                                  timestamp_buckets=3)
# The model checks fit 15 examples in global batches of 8: the last, of 7, splits 4 + 3.
MODEL_EXAMPLES, MODEL_BATCH = 15, 8
# The sharding check: three files of unequal sizes, read in order by two workers.
SHARD_FILES = (8, 2, 2)
TIMEOUT_S = 240


# ------------------------------------------------------------------ inputs of the checks


def _task_inputs(num_rows: int, multi_vector: bool, seed: int) -> Dict[str, np.ndarray]:
  """Unit-norm embeddings, few movie ids (accidental hits, also across replicas), sampling
  probabilities and sample weights."""
  rng = np.random.default_rng(seed)
  query_shape = (num_rows, 2, DIM) if multi_vector else (num_rows, DIM)
  queries = rng.normal(size=query_shape).astype(np.float32)
  candidates = rng.normal(size=(num_rows, DIM)).astype(np.float32)
  return {
      "queries": queries / np.linalg.norm(queries, axis=-1, keepdims=True),
      "candidates": candidates / np.linalg.norm(candidates, axis=-1, keepdims=True),
      "probability": rng.uniform(0.01, 0.5, num_rows).astype(np.float32),
      "ids": rng.integers(0, 3, num_rows).astype(np.int64),
      "weights": rng.uniform(0.5, 2.0, num_rows).astype(np.float32),
  }


def _task_loss(task: tfrs.tasks.Retrieval, inputs: Dict[str, Any]) -> tf.Tensor:
  return task(inputs["queries"], inputs["candidates"], sample_weight=inputs["weights"],
              candidate_sampling_probability=inputs["probability"],
              candidate_ids=inputs["ids"], compute_metrics=False)


def _loss_and_gradients(task: tfrs.tasks.Retrieval, inputs: Dict[str, Any]) -> List[tf.Tensor]:
  """[loss, d loss / d queries, d loss / d candidates]."""
  inputs = {name: tf.convert_to_tensor(value) for name, value in inputs.items()}
  with tf.GradientTape() as tape:
    tape.watch([inputs["queries"], inputs["candidates"]])
    loss = _task_loss(task, inputs)
  return [loss, *tape.gradient(loss, [inputs["queries"], inputs["candidates"]])]


def _stock_task(**kwargs: Any) -> tfrs.tasks.Retrieval:
  """tfrs.tasks.Retrieval as retrieval_task configured it before the cross-replica task."""
  return tfrs.tasks.Retrieval(
      loss=tf.keras.losses.CategoricalCrossentropy(
          from_logits=True, reduction=tf.keras.losses.Reduction.SUM_OVER_BATCH_SIZE),
      temperature=TEMPERATURE, remove_accidental_hits=True, **kwargs)


def _model_examples(num: int) -> Dict[str, np.ndarray]:
  """Transformed features of `num` examples for every tower family (few movies, so
  in-batch duplicates)."""
  rng = np.random.default_rng(5)
  users = rng.integers(0, SIZES.users, num)
  contexts = rng.integers(0, SIZES.movies, (num, 3))
  contexts[::3, 1:] = model_lib.PADDING
  return {
      features.USER_ID_INDEX: users.astype(np.int64),
      features.TIMESTAMP_BUCKET: (users % SIZES.timestamp_buckets).astype(np.int64),
      features.TIMESTAMP_NORMALIZED: rng.uniform(-0.5, 0.5, num).astype(np.float32),
      towers.CONTEXT_MOVIE_INDICES: contexts.astype(np.int64),
      features.MOVIE_ID_INDEX: rng.integers(0, 4, num).astype(np.int64),
      features.TITLE_TOKENS: rng.integers(0, SIZES.title_tokens, (num, 2)).astype(np.int64),
      features.GENRE_INDICES: rng.integers(0, SIZES.genres, (num, 2)).astype(np.int64),
  }


def _model_config(query_tower: str, user_id_head: bool) -> configs.TrainerConfig:
  """A tiny resolved config; L2 and Adagrad (for the head) make a wrong scale of the
  regularization or of the gradients show in the weights."""
  return towers.resolve_config(configs.TrainerConfig.from_flags(
      query_tower=query_tower, user_id_head=user_id_head, embedding_dim=DIM,
      l2_regularization=0.01, learning_rate=0.1, temperature=0.3, epochs=1,
      oov_user_rate=0.0, optimizer="adagrad"))


# ------------------------------------------------- the checks run in subprocesses (main)


def _distributed_task_case(strategy: tf.distribute.Strategy, rows: Sequence[int],
                           multi_vector: bool) -> Dict[str, Any]:
  """One global batch: on one replica, and split into `rows` over the strategy's."""
  inputs = _task_inputs(sum(rows), multi_vector, seed=sum(rows) + 10 * multi_vector)
  single = _loss_and_gradients(model_lib.CrossReplicaRetrieval(TEMPERATURE), inputs)
  starts = np.cumsum([0, *rows])
  parts = strategy.experimental_distribute_values_from_function(
      lambda context: {name: value[starts[context.replica_id_in_sync_group]:
                                   starts[context.replica_id_in_sync_group + 1]]
                       for name, value in inputs.items()})
  with strategy.scope():
    metric = tf.keras.metrics.Mean(name="mean_loss")
    task = model_lib.CrossReplicaRetrieval(TEMPERATURE, loss_metrics=[metric])
  per_replica = tf.function(lambda values: strategy.run(
      lambda part: _loss_and_gradients(task, part), args=(values,)))(parts)
  local = [strategy.experimental_local_results(value) for value in per_replica]
  # Each replica's batch alone (no gathering), weighted by its rows: what TFRS's task does.
  alone = sum(float(_task_loss(_stock_task(), {name: value[start:end] for name, value in
                                               inputs.items()})) * (end - start)
              for start, end in zip(starts[:-1], starts[1:]) if end > start) / sum(rows)
  return {
      "rows": list(rows), "multi_vector": multi_vector,
      "single": [value.numpy().tolist() for value in single],
      "replica_losses": [float(loss) for loss in local[0]],
      "query_gradients": np.concatenate([g.numpy() for g in local[1]]).tolist(),
      "candidate_gradients": np.concatenate([g.numpy() for g in local[2]]).tolist(),
      "metric": float(metric.result()),
      "batches_alone": alone,
  }


def _fit(model: model_lib.RetrievalModel, examples: Dict[str, np.ndarray]) -> Dict[str, Any]:
  model.compile(optimizer=tf.keras.optimizers.SGD(0.5))
  history = model.fit(tf.data.Dataset.from_tensor_slices(examples).batch(MODEL_BATCH),
                      epochs=1, verbose=0)
  return {"history": {key: [float(v) for v in values] for key, values in
                      history.history.items()},
          "weights": [w.tolist() for w in model.get_weights()]}


def _built_model(config: configs.TrainerConfig, probability: np.ndarray,
                 examples: Dict[str, np.ndarray]) -> model_lib.RetrievalModel:
  """A RetrievalModel with its weights (Keras creates them on the first call of the
  towers; the task's loss metric cannot be updated outside a replica's step)."""
  model = model_lib.RetrievalModel(SIZES, config, probability, max_context=3)
  model.query_embedding(examples)
  model.candidate_embedding(examples)
  return model


def _distributed_model_case(strategy: tf.distribute.Strategy, query_tower: str,
                            user_id_head: bool) -> Dict[str, Any]:
  """One epoch of Keras fit from the same weights: without a strategy, and under it."""
  config = _model_config(query_tower, user_id_head)
  examples = _model_examples(MODEL_EXAMPLES)
  probability = np.full(SIZES.movies, 1.0 / SIZES.movies, np.float32)
  single = _built_model(config, probability, examples)
  initial = single.get_weights()
  with strategy.scope():
    replicated = _built_model(config, probability, examples)
    replicated.set_weights(initial)
    distributed = _fit(replicated, examples)
  return {"query_tower": query_tower, "user_id_head": user_id_head,
          "single": _fit(single, examples), "distributed": distributed,
          "initial": [w.tolist() for w in initial]}


def _replica_checks(out_path: str) -> None:
  """Runs in a fresh process: 2 logical CPUs, MirroredStrategy over them."""
  cpu = tf.config.list_physical_devices("CPU")[0]
  tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
  strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
  results = {
      "replicas": strategy.num_replicas_in_sync,
      "tasks": [_distributed_task_case(strategy, rows, multi_vector=False) for rows in SPLITS]
               + [_distributed_task_case(strategy, SPLITS[1], multi_vector=True)],
      # A context tower with a user id head: both tasks, both optimizers, regularization.
      "model": _distributed_model_case(strategy, "history", user_id_head=True),
  }
  with open(out_path, "w") as f:
    json.dump(results, f)


def _shard_elements(strategy: tf.distribute.Strategy, data_dir: str) -> List[int]:
  """The elements this worker trains on, from the SHARD_FILES read in order."""
  files = sorted(tf.io.gfile.glob(os.path.join(data_dir, "*.tfrecord")))
  dataset = tf.data.TFRecordDataset(files).map(
      lambda record: tf.io.parse_tensor(record, tf.int64)).batch(2)
  elements = []
  for batch in strategy.experimental_distribute_dataset(distribution.shard(dataset, strategy)):
    for local in strategy.experimental_local_results(batch):
      elements += local.numpy().tolist()
  return elements


def _worker_checks(out_path: str) -> None:
  """Runs in one process per TF_CONFIG task: the strategy, the chief, sharding, the task
  over the workers, and saving."""
  strategy = distribution.strategy_from_tf_config()
  task_index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
  inputs = _task_inputs(6, multi_vector=False, seed=3)
  half = {name: value[3 * task_index:3 * task_index + 3] for name, value in inputs.items()}
  with strategy.scope():
    task = model_lib.CrossReplicaRetrieval(TEMPERATURE)
  loss = tf.function(lambda: strategy.run(lambda: _task_loss(task, half)))()
  model_dir = os.path.join(os.path.dirname(out_path), "model")
  with strategy.scope():
    model = tf.keras.Sequential([tf.keras.layers.Dense(1, input_shape=(2,))])
  with distribution.saving_model_dir(model_dir, strategy) as path:
    model.save(path)
    saved = tf.io.gfile.exists(os.path.join(path, "saved_model.pb"))
  results = {
      "multi_worker": isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy),
      "replicas": strategy.num_replicas_in_sync,
      "is_chief": distribution.is_chief(strategy),
      # The fixture writes the files beside the workers' directories.
      "elements": _shard_elements(strategy, os.path.dirname(os.path.dirname(out_path))),
      "loss": float(strategy.experimental_local_results(loss)[0]),
      "single_loss": float(_task_loss(model_lib.CrossReplicaRetrieval(TEMPERATURE), inputs)),
      "save_path": path, "saved": saved, "save_path_left": tf.io.gfile.exists(path),
  }
  with open(out_path, "w") as f:
    json.dump(results, f)


# ------------------------------------------------------------- running the subprocesses


def _command(mode: str, out_path: str) -> List[str]:
  return [sys.executable, "-m", "tests.test_distribution", mode, out_path]


def _environment(**extra: str) -> Dict[str, str]:
  """This process's environment on CPU only, with `extra` (TF_CONFIG only from it)."""
  environment = {name: value for name, value in os.environ.items() if name != "TF_CONFIG"}
  return {**environment, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
          "CUDA_VISIBLE_DEVICES": "", **extra}


def wait_all(processes: List[subprocess.Popen], logs: List[str], timeout_s: float) -> None:
  """Waits for every process (all killed once `timeout_s` has passed) and asserts each
  exited 0, showing the tail of its log file otherwise."""
  deadline = time.monotonic() + timeout_s
  try:
    for process in processes:
      process.wait(timeout=max(1.0, deadline - time.monotonic()))
  finally:
    for process in processes:
      if process.poll() is None:
        process.kill()
        process.wait()
  for process, log in zip(processes, logs):
    with open(log) as f:
      assert process.returncode == 0, f.read()[-3000:]


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


@pytest.fixture(scope="module")
def replicas(tmp_path_factory) -> Dict[str, Any]:
  out_path = str(tmp_path_factory.mktemp("replicas") / "results.json")
  done = subprocess.run(_command("replicas", out_path), cwd=ROOT, env=_environment(),
                        capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  with open(out_path) as f:
    return json.load(f)


@pytest.fixture(scope="module")
def workers(tmp_path_factory) -> List[Dict[str, Any]]:
  """Two workers of a localhost cluster (worker 0 the chief), both killed on timeout."""
  root = tmp_path_factory.mktemp("workers")
  start = 0
  for i, size in enumerate(SHARD_FILES):
    with tf.io.TFRecordWriter(str(root / f"part-{i}.tfrecord")) as writer:
      for value in range(start, start + size):
        writer.write(tf.io.serialize_tensor(tf.constant(value, tf.int64)).numpy())
    start += size
  cluster = {"worker": [f"localhost:{_free_port()}" for _ in range(2)]}
  processes, logs = [], []
  for index in range(2):
    (root / f"worker{index}").mkdir()
    tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
    # Logs to files, not pipes: a full pipe would stall a worker and then both.
    logs.append(root / f"worker{index}" / "stderr.log")
    with open(logs[-1], "w") as log:
      processes.append(subprocess.Popen(
          _command("worker", str(root / f"worker{index}" / "results.json")), cwd=ROOT,
          env=_environment(TF_CONFIG=tf_config), stdout=subprocess.DEVNULL, stderr=log))
  wait_all(processes, [str(log) for log in logs], TIMEOUT_S)
  results = []
  for index in range(2):
    with open(root / f"worker{index}" / "results.json") as f:
      results.append({**json.load(f), "model_dir": str(root / f"worker{index}" / "model")})
  return results


# ------------------------------------------------------------------ one replica (here)


@pytest.mark.parametrize("multi_vector", [False, True])
def test_one_replica_is_tfrs_retrieval(multi_vector):
  inputs = _task_inputs(7, multi_vector, seed=1)
  stock_metric, metric = tf.keras.metrics.Mean(), tf.keras.metrics.Mean()
  expected = _loss_and_gradients(_stock_task(loss_metrics=[stock_metric]), inputs)
  got = _loss_and_gradients(model_lib.CrossReplicaRetrieval(TEMPERATURE,
                                                            loss_metrics=[metric]), inputs)
  # To float precision: the task computes the cross-entropy from the positives' indices.
  for want, have in zip(expected, got):
    np.testing.assert_allclose(have.numpy(), want.numpy(), rtol=1e-5, atol=1e-7)
  assert float(metric.result()) == pytest.approx(float(stock_metric.result()), rel=1e-6)
  # Under the default strategy, and a strategy of one replica (where Keras refuses the
  # stock task's per-example mean).
  with tf.distribute.get_strategy().scope():
    np.testing.assert_allclose(
        _task_loss(model_lib.CrossReplicaRetrieval(TEMPERATURE), inputs).numpy(),
        expected[0].numpy(), rtol=1e-6)
  one_replica = tf.distribute.MirroredStrategy(["/cpu:0"])
  with one_replica.scope():
    task = model_lib.CrossReplicaRetrieval(TEMPERATURE)
  loss = one_replica.run(tf.function(lambda: _task_loss(task, inputs)))
  assert float(loss) == pytest.approx(float(expected[0]), rel=1e-6)
  # The inputs have accidental hits: keeping them changes the loss.
  kept = tfrs.tasks.Retrieval(
      loss=tf.keras.losses.CategoricalCrossentropy(
          from_logits=True, reduction=tf.keras.losses.Reduction.SUM_OVER_BATCH_SIZE),
      temperature=TEMPERATURE)
  assert float(_task_loss(kept, inputs)) != pytest.approx(float(expected[0]))


def test_retrieval_task_is_the_cross_replica_task():
  task = model_lib.retrieval_task(0.3, "head_loss")
  assert isinstance(task, model_lib.CrossReplicaRetrieval)
  assert [metric.name for metric in task._loss_metrics] == ["head_loss"]
  with pytest.raises(ValueError, match="candidate ids"):
    task(tf.ones([2, DIM]), tf.ones([2, DIM]))
  with pytest.raises(ValueError, match="score_mask"):
    task(tf.ones([2, DIM]), tf.ones([2, DIM]), candidate_ids=tf.constant([1, 2]),
         score_mask=tf.ones([2, 2], tf.bool))


# --------------------------------------------------------- several replicas (subprocess)


def test_two_replicas_train_the_single_replica_objective(replicas):
  assert replicas["replicas"] == 2
  for case in replicas["tasks"]:
    loss, query_gradients, candidate_gradients = case["single"]
    # The replicas' losses add up to the mean over the global batch: Keras sums their
    # gradients, which then are the single replica's.
    assert sum(case["replica_losses"]) == pytest.approx(loss, rel=1e-5), case["rows"]
    assert case["metric"] == pytest.approx(loss, rel=1e-5), case["rows"]
    np.testing.assert_allclose(case["query_gradients"], query_gradients, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(case["candidate_gradients"], candidate_gradients, rtol=1e-4,
                               atol=1e-6)
    # Each replica's batch alone (TFRS's task) is another objective: the check can fail.
    if min(case["rows"]) > 0:
      assert case["batches_alone"] != pytest.approx(loss, rel=1e-3), case["rows"]
  assert {tuple(case["rows"]) for case in replicas["tasks"]} == set(SPLITS)
  assert any(case["multi_vector"] for case in replicas["tasks"])


def test_two_replicas_fit_the_model_like_one(replicas):
  case = replicas["model"]
  single, distributed = case["single"], case["distributed"]
  assert set(distributed["history"]) == set(single["history"])
  for key, values in single["history"].items():
    np.testing.assert_allclose(distributed["history"][key], values, rtol=1e-4, err_msg=key)
  assert single["history"]["regularization_loss"][0] > 0.0
  for got, want in zip(distributed["weights"], single["weights"]):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
  assert any(not np.allclose(w, i) for w, i in zip(single["weights"], case["initial"]))
  assert case["user_id_head"] and "user_id_mean_loss" in single["history"]


# ------------------------------------------------------------------------------ workers


def test_two_workers_from_tf_config(workers):
  chief, other = workers
  assert [w["multi_worker"] for w in workers] == [True, True]
  assert [w["replicas"] for w in workers] == [2, 2]
  assert (chief["is_chief"], other["is_chief"]) == (True, False)
  # Sharded by element: equal shares of unequal files, every element once.
  assert len(chief["elements"]) == len(other["elements"]) == sum(SHARD_FILES) // 2
  assert sorted(chief["elements"] + other["elements"]) == list(range(sum(SHARD_FILES)))
  # The in-batch negatives span both workers.
  assert chief["loss"] + other["loss"] == pytest.approx(chief["single_loss"], rel=1e-5)
  # Both saved; only the chief's copy is kept, in the model directory.
  assert chief["saved"] and other["saved"]
  assert chief["save_path"] == chief["model_dir"] and chief["save_path_left"]
  assert other["save_path"] != other["model_dir"] and not other["save_path_left"]
  assert not os.path.exists(other["model_dir"])


# ----------------------------------------------------------- TF_CONFIG without a cluster


def _tf_config(monkeypatch, cluster: Dict[str, List[str]], task_type: str, index: int) -> None:
  monkeypatch.setenv("TF_CONFIG", json.dumps(
      {"cluster": cluster, "task": {"type": task_type, "index": index}}))


TWO_WORKERS = {"worker": ["host0:2222", "host1:2222"]}
CHIEF_AND_WORKERS = {"chief": ["host0:2222"], "worker": ["host1:2222", "host2:2222"],
                     "evaluator": ["host3:2222"]}


def test_without_tf_config_the_default_strategy(monkeypatch):
  monkeypatch.delenv("TF_CONFIG", raising=False)
  assert distribution.strategy_from_tf_config() is tf.distribute.get_strategy()
  _tf_config(monkeypatch, {"worker": ["host0:2222"]}, "worker", 0)
  assert distribution.strategy_from_tf_config() is tf.distribute.get_strategy()
  assert distribution.is_chief(tf.distribute.get_strategy())


def test_a_two_worker_tf_config_makes_a_multi_worker_strategy(monkeypatch):
  made = []
  monkeypatch.setattr(tf.distribute, "MultiWorkerMirroredStrategy",
                      lambda cluster_resolver: made.append(cluster_resolver) or "mwms")
  _tf_config(monkeypatch, TWO_WORKERS, "worker", 1)
  assert distribution.strategy_from_tf_config() == "mwms"
  (resolver,) = made
  assert resolver.cluster_spec().as_dict() == TWO_WORKERS
  assert (resolver.task_type, resolver.task_id) == ("worker", 1)
  # The evaluator does not train: a chief, two workers are three training tasks.
  _tf_config(monkeypatch, CHIEF_AND_WORKERS, "chief", 0)
  assert distribution.num_training_tasks(distribution.tf_config_resolver()) == 3


@pytest.mark.parametrize("cluster,task_type,index,chief", [
    (CHIEF_AND_WORKERS, "chief", 0, True),
    (CHIEF_AND_WORKERS, "worker", 0, False),
    (CHIEF_AND_WORKERS, "worker", 1, False),
    (CHIEF_AND_WORKERS, "evaluator", 0, False),
    (TWO_WORKERS, "worker", 0, True),
    (TWO_WORKERS, "worker", 1, False),
])
def test_is_chief(monkeypatch, cluster, task_type, index, chief):
  _tf_config(monkeypatch, cluster, task_type, index)
  strategy = types.SimpleNamespace(cluster_resolver=distribution.tf_config_resolver())
  assert distribution.is_chief(strategy) is chief


def test_non_chief_workers_save_into_a_directory_that_is_removed(monkeypatch, tmp_path):
  model_dir = str(tmp_path / "model")
  with distribution.saving_model_dir(model_dir, tf.distribute.get_strategy()) as path:
    assert path == model_dir
    tf.io.gfile.makedirs(path)
  assert os.path.isdir(model_dir)  # The chief's is kept.
  _tf_config(monkeypatch, TWO_WORKERS, "worker", 1)
  worker = types.SimpleNamespace(cluster_resolver=distribution.tf_config_resolver())
  with distribution.saving_model_dir(str(tmp_path / "other"), worker) as path:
    assert os.path.isdir(path) and not path.startswith(str(tmp_path))
    with open(os.path.join(path, "saved_model.pb"), "w") as f:
      f.write("x")
  assert not os.path.exists(path) and not os.path.exists(tmp_path / "other")


def test_shard_by_data_only_across_workers(monkeypatch):
  dataset = tf.data.Dataset.range(4)
  assert distribution.shard(dataset, tf.distribute.get_strategy()) is dataset
  _tf_config(monkeypatch, TWO_WORKERS, "worker", 0)
  worker = types.SimpleNamespace(cluster_resolver=distribution.tf_config_resolver())
  policy = distribution.shard(dataset, worker).options().experimental_distribute
  assert policy.auto_shard_policy == tf.data.experimental.AutoShardPolicy.DATA


if __name__ == "__main__":
  {"replicas": _replica_checks, "worker": _worker_checks}[sys.argv[1]](sys.argv[2])
