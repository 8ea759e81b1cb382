"""CurateSchema: SchemaGen's inferred schema, minus what the train split pinned by chance.

SchemaGen pins the value set (a string domain) of every string feature that has few
distinct values in the train split. For ids and titles that is wrong: they are free text,
and the eval split of a small data set (or any new movie) then fails ExampleValidator with
"Unexpected string values". Likewise, when every train movie happens to have the same
number of genres, SchemaGen fixes the genres' shape, and an eval movie with another count
fails. This step drops those value sets, and the shape of every feature that the feature
spec declares variable-length, and keeps the rest of the inferred schema (genres' value
set included), so ExampleValidator still catches an unknown genre, a missing feature or a
type change. ExampleValidator, Transform and the Trainer all read the curated schema.
"""
import os

import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.annotations import OutputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts
from tfx.utils import io_utils

from contracts import features

# Identifiers and text: any value may appear, so the schema must not list their values.
FREE_TEXT_FEATURES = (features.USER_ID, features.MOVIE_ID, features.MOVIE_TITLE)
# The file name SchemaGen writes, and the only file Transform and the Trainer accept.
SCHEMA_FILE = "schema.pbtxt"


def curate(schema: schema_pb2.Schema) -> schema_pb2.Schema:
  """A copy of `schema` without the value sets of FREE_TEXT_FEATURES and without fixed
  shapes for variable-length features.

  Drops each free-text feature's string domain (inline or a reference to a top-level
  string domain; an int domain, which only says "an integer", stays), then the top-level
  string domains no feature refers to any more.
  """
  curated = schema_pb2.Schema()
  curated.CopyFrom(schema)
  spec = features.raw_feature_spec()
  for feature in curated.feature:
    if (feature.name in FREE_TEXT_FEATURES
        and feature.WhichOneof("domain_info") in ("domain", "string_domain")):
      feature.ClearField("domain_info")
    if isinstance(spec.get(feature.name), tf.io.VarLenFeature):
      feature.ClearField("shape")
  used = {feature.domain for feature in curated.feature
          if feature.WhichOneof("domain_info") == "domain"}
  kept = [domain for domain in curated.string_domain if domain.name in used]
  del curated.string_domain[:]
  curated.string_domain.extend(kept)
  return curated


@component
def CurateSchema(  # pylint: disable=invalid-name
    schema: InputArtifact[standard_artifacts.Schema],
    curated_schema: OutputArtifact[standard_artifacts.Schema]) -> None:
  """Writes `curate` of SchemaGen's `schema` as `curated_schema`."""
  inferred = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(schema.uri))
  io_utils.write_pbtxt_file(os.path.join(curated_schema.uri, SCHEMA_FILE),
                            curate(inferred))
