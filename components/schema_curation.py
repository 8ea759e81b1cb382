"""CurateSchema: SchemaGen's inferred schema, minus what the train split pinned by chance.

SchemaGen pins the value set (a string domain) of every string feature that has few
distinct values in the train split. For ids and titles that is wrong: they are free text,
and the eval split of a small data set (or any new movie) then fails ExampleValidator with
"Unexpected string values". Likewise, when every train movie happens to have the same
number of genres, SchemaGen fixes the genres' shape, and an eval movie with another count
fails. This step drops those value sets, and the shape of every feature that the feature
spec declares variable-length, and keeps the rest of the inferred schema, so
ExampleValidator still catches an unknown genre, a missing feature or a type change.
ExampleValidator, Transform and the Trainer all read the curated schema.

Genres keep a value set, but the catalog's, not the train split's: a genre that only
movies rated in eval have (new movies after a temporal cutoff: ml-latest-small's
"(no genres listed)") is a known value, not an anomaly.
"""
import os
from typing import Iterable, Set

import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.annotations import OutputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.utils import io_utils

from contracts import artifacts
from contracts import features

# Identifiers and text: any value may appear, so the schema must not list their values.
FREE_TEXT_FEATURES = (features.USER_ID, features.MOVIE_ID, features.MOVIE_TITLE)
# The file name SchemaGen writes, and the only file Transform and the Trainer accept.
SCHEMA_FILE = "schema.pbtxt"


def curate(schema: schema_pb2.Schema, catalog_genres: Iterable[str] = ()) -> schema_pb2.Schema:
  """A copy of `schema` without the value sets of FREE_TEXT_FEATURES, without fixed
  shapes for variable-length features, and with every catalog genre in the genres'
  value set.

  Drops each free-text feature's string domain (inline or a reference to a top-level
  string domain; an int domain, which only says "an integer", stays), then the top-level
  string domains no feature refers to any more. A genres feature without a value set
  stays without one.
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
  _add_values(curated, features.MOVIE_GENRES, catalog_genres)
  return curated


def _add_values(schema: schema_pb2.Schema, name: str, values: Iterable[str]) -> None:
  """Adds to feature `name`'s string domain (inline or top-level) the `values` it lacks."""
  feature = next((f for f in schema.feature if f.name == name), None)
  kind = feature.WhichOneof("domain_info") if feature is not None else None
  if kind == "string_domain":
    domain = feature.string_domain
  elif kind == "domain":
    domain = next(d for d in schema.string_domain if d.name == feature.domain)
  else:
    return
  domain.value.extend(sorted(set(values) - set(domain.value)))


def catalog_genres(movies: standard_artifacts.Examples) -> Set[str]:
  """Every genre of the catalog (MovieLensExampleGen's `movies`, split CATALOG_SPLIT)."""
  split_dir = artifact_utils.get_split_uri([movies], artifacts.CATALOG_SPLIT)
  files = tf.io.gfile.glob(os.path.join(split_dir, "*"))
  if not files:
    raise ValueError(f"The movie catalog has no files in {split_dir}.")
  spec = features.raw_feature_spec([features.MOVIE_GENRES])
  batches = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(4096).map(
      lambda serialized: tf.io.parse_example(serialized, spec)[features.MOVIE_GENRES].values)
  return {genre.decode("utf-8") for values in batches for genre in set(values.numpy())}


@component
def CurateSchema(  # pylint: disable=invalid-name
    schema: InputArtifact[standard_artifacts.Schema],
    movies: InputArtifact[standard_artifacts.Examples],
    curated_schema: OutputArtifact[standard_artifacts.Schema]) -> None:
  """Writes `curate` of SchemaGen's `schema`, with the genres of the catalog `movies`, as
  `curated_schema`."""
  inferred = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(schema.uri))
  io_utils.write_pbtxt_file(os.path.join(curated_schema.uri, SCHEMA_FILE),
                            curate(inferred, catalog_genres(movies)))
