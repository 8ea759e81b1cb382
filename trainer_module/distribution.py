"""Training under a tf.distribute strategy: which strategy, which worker is the chief,
where each worker saves, how the input is sharded, and a batch gathered from every replica.

run_fn builds the strategy first (`strategy_from_tf_config`), builds and compiles the
model inside `strategy.scope()`, passes the training dataset through `shard`, and saves
into `saving_model_dir`. One worker (no TF_CONFIG, or a cluster of one task) gets the
default strategy: the same graph, the same numbers as without this module.
"""
import contextlib
import dataclasses
import tempfile
from typing import Iterator, Optional, Sequence, Tuple

import tensorflow as tf

ClusterResolver = tf.distribute.cluster_resolver.ClusterResolver

CHIEF = "chief"
WORKER = "worker"
# The jobs whose tasks train (an 'evaluator' or 'ps' task does not run the training step).
_TRAINING_JOBS = (CHIEF, WORKER)


def tf_config_resolver() -> tf.distribute.cluster_resolver.TFConfigClusterResolver:
  """The cluster and this task as the TF_CONFIG environment variable names them (an empty
  cluster and no task type when TF_CONFIG is unset)."""
  return tf.distribute.cluster_resolver.TFConfigClusterResolver()


def num_training_tasks(resolver: ClusterResolver) -> int:
  """Chief and worker tasks of `resolver`'s cluster: the processes that train."""
  spec = resolver.cluster_spec()
  return sum(spec.num_tasks(job) for job in _TRAINING_JOBS if job in spec.jobs)


def strategy_from_tf_config() -> tf.distribute.Strategy:
  """MultiWorkerMirroredStrategy when TF_CONFIG names a cluster of several chief/worker
  tasks, else the default strategy (`tf.distribute.get_strategy()`).

  Call it first in run_fn, before any other TensorFlow op: MultiWorkerMirroredStrategy
  configures the process's collective ops, which TensorFlow allows only before its
  context is initialized, and it waits until every worker of the cluster has started.
  """
  resolver = tf_config_resolver()
  if num_training_tasks(resolver) > 1:
    return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
  return tf.distribute.get_strategy()


def is_chief_task(resolver: Optional[ClusterResolver]) -> bool:
  """Whether `resolver`'s task is the chief: no cluster (one worker), the 'chief' task,
  or worker 0 of a cluster without a 'chief' job (the TFX and Keras convention)."""
  if resolver is None or not resolver.task_type:
    return True
  if resolver.task_type == CHIEF:
    return True
  has_chief = CHIEF in resolver.cluster_spec().jobs
  return resolver.task_type == WORKER and resolver.task_id == 0 and not has_chief


def is_chief(strategy: tf.distribute.Strategy) -> bool:
  """Whether this process writes the model: true on a single worker and on the chief."""
  return is_chief_task(strategy.cluster_resolver)


def worker_model_dir(model_dir: str, strategy: tf.distribute.Strategy) -> str:
  """Where this worker saves the model: `model_dir` on the chief, else a new local
  temporary directory.

  Under MultiWorkerMirroredStrategy saving runs collective ops, so every worker must
  save, but only the chief's copy is kept: the others write to a directory that
  `remove_worker_model_dir` then deletes. It is local, not beside `model_dir`, so that a
  worker never writes into the chief's artifact (a remote store, for a TFX Trainer) and
  a worker killed before the cleanup leaves nothing there.
  """
  if is_chief(strategy):
    return model_dir
  resolver = strategy.cluster_resolver
  return tempfile.mkdtemp(prefix=f"{resolver.task_type}_{resolver.task_id}_model_")


def remove_worker_model_dir(path: str, model_dir: str) -> None:
  """Deletes a non-chief worker's `path` (from `worker_model_dir`); keeps the chief's."""
  if path != model_dir and tf.io.gfile.exists(path):
    tf.io.gfile.rmtree(path)


@contextlib.contextmanager
def saving_model_dir(model_dir: str, strategy: tf.distribute.Strategy) -> Iterator[str]:
  """`worker_model_dir` for the duration of the block, removed afterwards on non-chief
  workers: `with saving_model_dir(uri, strategy) as path: model.save(path)`."""
  path = worker_model_dir(model_dir, strategy)
  try:
    yield path
  finally:
    remove_worker_model_dir(path, model_dir)


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
  """Whether `strategy` spans several training processes (MultiWorkerMirroredStrategy
  built from a cluster of several tasks)."""
  resolver = strategy.cluster_resolver
  return resolver is not None and num_training_tasks(resolver) > 1


def shard(dataset: tf.data.Dataset, strategy: tf.distribute.Strategy) -> tf.data.Dataset:
  """`dataset` set to be sharded across workers by element (AutoShardPolicy.DATA) when
  `strategy` is multi-worker; unchanged otherwise.

  The input is a few files read in order. The default policy (AUTO) shards by FILE when
  it finds a file reader: each worker reads whole files, so with a few files of unequal
  sizes the workers' shares differ (and FILE needs at least as many files as workers).
  The workers then run different numbers of steps, but every step's collective ops need
  all of them: the run fails. DATA gives each worker every n-th element (every n-th
  batch, once batched) of the whole dataset; each worker reads all files and drops the
  others' elements, and the shares differ by at most one element, whatever the files.
  It needs every worker to produce the elements in the same order, so a shuffle must be
  seeded alike on every worker.
  """
  if not is_multi_worker(strategy):
    return dataset
  options = tf.data.Options()
  options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
  return dataset.with_options(options)


# ------------------------------------------------------------ inside the training step


def _replica_context() -> Optional[tf.distribute.ReplicaContext]:
  """The replica context when several replicas run this step, else None (one replica,
  or a cross-replica context such as building the model in `strategy.scope()`)."""
  context = tf.distribute.get_replica_context()
  if context is None or context.num_replicas_in_sync == 1:
    return None
  return context


def replicas_in_step() -> int:
  """Replicas running this step in sync (1 without a strategy, or outside a step)."""
  context = _replica_context()
  return 1 if context is None else context.num_replicas_in_sync


@dataclasses.dataclass(frozen=True)
class GatheredBatch:
  """Rows of every replica, concatenated in replica order.

  differentiable: the gathered `differentiable` tensors; their gradient reaches each
    replica's own rows from every replica's loss (all_gather's gradient sums the
    replicas' gradients and keeps the local rows).
  constants: the gathered `constants`, without gradient.
  offset: int32 scalar, the gathered row of this replica's first row.
  num_rows: int32 scalar, the rows of all replicas.
  num_examples: int32 scalar, the `examples` counts of all replicas summed.
  num_replicas: The replicas gathered from (1: the tensors came back as they were).
  """
  differentiable: Tuple[tf.Tensor, ...]
  constants: Tuple[tf.Tensor, ...]
  offset: tf.Tensor
  num_rows: tf.Tensor
  num_examples: tf.Tensor
  num_replicas: int


def gather_replicas(differentiable: Sequence[tf.Tensor], constants: Sequence[tf.Tensor],
                    examples: tf.Tensor) -> GatheredBatch:
  """Concatenates each tensor's rows (axis 0) over the replicas, in replica order.

  Every tensor has this replica's same number of rows, which may differ between replicas
  (a partial last batch): the gathered row counts place this replica's rows. With one
  replica the tensors come back unchanged, offset 0.

  Args:
    differentiable: Tensors whose gradients must reach every replica's rows.
    constants: Tensors gathered without gradient (ids, probabilities).
    examples: int32 scalar, this replica's examples (the loss's denominator).
  """
  rows = tf.shape(differentiable[0], out_type=tf.int32)[:1]
  context = _replica_context()
  if context is None:
    return GatheredBatch(tuple(differentiable), tuple(constants), tf.constant(0), rows[0],
                         examples, num_replicas=1)
  gathered = context.all_gather(list(differentiable), axis=0)
  *others, all_rows, all_examples = context.all_gather(
      [tf.stop_gradient(c) for c in constants] + [rows, tf.reshape(examples, [1])], axis=0)
  replica = tf.cast(context.replica_id_in_sync_group, tf.int32)
  return GatheredBatch(tuple(gathered), tuple(tf.stop_gradient(c) for c in others),
                       offset=tf.reduce_sum(all_rows[:replica]),
                       num_rows=tf.reduce_sum(all_rows),
                       num_examples=tf.reduce_sum(all_examples),
                       num_replicas=replicas_in_step())
