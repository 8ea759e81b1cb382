"""VertexRetrievalTrainer: RetrievalTrainer run as a Vertex AI custom training job.

TFX's extension Trainer (tfx.extensions.google_cloud_ai_platform) trains remotely: its
executor, run by the pipeline's task, submits a Vertex AI CustomJob whose replicas each
run `python -m tfx.scripts.run_executor` with the executor class that `_GetExecutorClass`
names, then waits for the job. Here that class is RetrievalTrainer's executor, so every
replica still hands run_fn the catalog's files. The job (project, region, worker pools)
rides in the Trainer's `custom_config` under the extension's keys
(`VertexTrainingJob.custom_config`); run_fn ignores them.

Vertex AI sets TF_CONFIG on every replica of a job of several replicas (the first pool's
replica is the 'chief', the second pool's are 'worker's); run_fn builds its distribution
strategy from it. Only pipeline/kubeflow.py builds a job: this module imports the Vertex
AI client libraries, which the local runner never needs.
"""
import dataclasses
from typing import Any, Dict, List, Optional

from tfx.dsl.components.base import executor_spec
from tfx.extensions.google_cloud_ai_platform import constants as vertex_constants
from tfx.extensions.google_cloud_ai_platform.trainer import executor as vertex_executor

from components import retrieval_trainer
from contracts import configs


@dataclasses.dataclass(frozen=True)
class VertexTrainingJob:
  """Where and on what the Trainer's Vertex AI custom job runs."""
  project: str
  region: str
  image: str
  config: configs.VertexTrainingConfig

  def worker_pool_specs(self) -> List[Dict[str, Any]]:
    """One chief, then `replicas - 1` workers, all in the pipeline's image.

    The extension overrides each pool's container command with its run_executor call, so
    only the image is given.
    """
    def pool(replica_count: int) -> Dict[str, Any]:
      return {"machine_spec": {"machine_type": self.config.machine_type},
              "replica_count": replica_count,
              "container_spec": {"image_uri": self.image}}
    workers = self.config.replicas - 1
    return [pool(1)] + ([pool(workers)] if workers else [])

  def custom_config(self) -> Dict[str, Any]:
    """The extension's `custom_config` entries: Vertex AI (not the legacy AI Platform),
    its region, and the CustomJob with the project it runs in."""
    return {vertex_constants.ENABLE_VERTEX_KEY: True,
            vertex_constants.VERTEX_REGION_KEY: self.region,
            vertex_executor.TRAINING_ARGS_KEY: {
                "project": self.project,
                "job_spec": {"worker_pool_specs": self.worker_pool_specs()}}}


class Executor(vertex_executor.GenericExecutor):
  """The extension's executor, whose replicas run RetrievalTrainer's executor."""

  def _GetExecutorClass(self):
    return retrieval_trainer.Executor


class VertexRetrievalTrainer(retrieval_trainer.RetrievalTrainer):
  """RetrievalTrainer whose training runs on Vertex AI replicas, not in its task's pod.

  It keeps RetrievalTrainer's node id, so the task, its ML Metadata history and the
  readers of its outputs are the same on one pod or on N replicas.
  """
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

  def __init__(self, job: VertexTrainingJob,
               custom_config: Optional[Dict[str, Any]] = None, **trainer_args: Any):
    """Constructs the component.

    Args:
      job: The Vertex AI custom job to train in.
      custom_config: run_fn's custom_config; the job's entries are added to it.
      **trainer_args: RetrievalTrainer's other arguments.
    """
    super().__init__(custom_config={**(custom_config or {}), **job.custom_config()},
                     **trainer_args)
    self.id = retrieval_trainer.RetrievalTrainer.__name__
