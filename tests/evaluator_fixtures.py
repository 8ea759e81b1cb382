"""The RetrievalEvaluator's test problem and fake Trainer outputs, shared by its tests.

The data has 8 taste groups of 5 users; group g rates only movies of block g (50 movies,
popular ones more often). A model whose user and movie embeddings are the one-hot group
and block knows everything there is to know; one with random embeddings knows nothing.
`run_evaluator` runs the executor on them; `ReportParser`, `value_at` and
`assert_shown_as` read its HTML report back against metrics.json.
"""
import html.parser
import os

import numpy as np
import tensorflow as tf
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from components.retrieval_evaluator import executor
from components.retrieval_evaluator import results as results_lib
from contracts import artifacts
from contracts import features
from contracts import serving

NUM_GROUPS, USERS_PER_GROUP, BLOCK = 8, 5, 50
NUM_RATED_MOVIES = NUM_GROUPS * BLOCK
NUM_MOVIES = NUM_RATED_MOVIES + 20  # The last 20 are never rated.
TRAIN_PER_USER, EVAL_PER_USER = 20, 5
MOVIE_IDS = [str(1000 + i) for i in range(NUM_MOVIES)]
# Catalog order differs from id order, so a mix-up of ids and columns shows.
CATALOG = MOVIE_IDS[::-1]
USER_IDS = [str(u + 1) for u in range(NUM_GROUPS * USERS_PER_GROUP)]


def group(user: int) -> int:
  return user // USERS_PER_GROUP


def make_ratings(seed=0):
  """(user, movie, timestamp, split) tuples; user and movie are indices."""
  rng = np.random.default_rng(seed)
  popularity = 1.0 / np.arange(1, BLOCK + 1)  # Zipf-like within each block.
  rows = []
  for user in range(len(USER_IDS)):
    picks = rng.choice(BLOCK, TRAIN_PER_USER + EVAL_PER_USER, replace=False,
                       p=popularity / popularity.sum())
    rng.shuffle(picks)  # Eval movies as popular as train ones, as in a random split.
    for i, pick in enumerate(picks):
      split = "train" if i < TRAIN_PER_USER else "eval"
      rows.append((user, group(user) * BLOCK + int(pick), int(rng.integers(1e9, 2e9)),
                   split))
  return rows


RATINGS = make_ratings()


def example(user: int, movie: int, timestamp: int) -> bytes:
  feature = {
      features.USER_ID: tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[USER_IDS[user].encode()])),
      features.MOVIE_ID: tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[MOVIE_IDS[movie].encode()])),
      features.TIMESTAMP: tf.train.Feature(int64_list=tf.train.Int64List(value=[timestamp])),
      features.MOVIE_TITLE: tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[f"Movie {movie} (1999)".encode()])),
      features.MOVIE_GENRES: tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[b"Drama"])),
      features.USER_RATING: tf.train.Feature(float_list=tf.train.FloatList(value=[4.0])),
  }
  return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_examples(uri: str, ratings=RATINGS) -> standard_artifacts.Examples:
  artifact = standard_artifacts.Examples()
  artifact.uri = uri
  artifact.split_names = artifact_utils.encode_split_names(["train", "eval"])
  for split in ("train", "eval"):
    split_dir = artifact_utils.get_split_uri([artifact], split)
    os.makedirs(split_dir)
    rows = [r for r in ratings if r[3] == split]
    # Two shards per split, as ExampleGen writes several.
    for shard, part in enumerate((rows[::2], rows[1::2])):
      path = os.path.join(split_dir, f"data_tfrecord-{shard:05d}.gz")
      with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for user, movie, timestamp, _ in part:
          writer.write(example(user, movie, timestamp))
  return artifact


class QueryModel(tf.Module):
  """user_id -> fixed embedding via a hash table; unknown users -> the OOV (last) row."""

  def __init__(self, user_ids, embeddings):
    super().__init__()
    self._table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(user_ids), tf.range(len(user_ids), dtype=tf.int64)),
        default_value=len(user_ids))
    oov = np.zeros([1, embeddings.shape[1]], np.float32)
    self._embeddings = tf.Variable(np.concatenate([embeddings, oov]).astype(np.float32))

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=features.USER_ID),
                                tf.TensorSpec([None], tf.int64, name=features.TIMESTAMP)])
  def serve(self, user_id, timestamp):
    del timestamp  # The fixed embeddings do not depend on time.
    return {serving.EMBEDDING_OUTPUT: tf.gather(self._embeddings,
                                                     self._table.lookup(user_id))}


def write_model(uri: str, user_embeddings: np.ndarray, movie_embeddings: np.ndarray,
                 catalog=CATALOG, model_id: int = 1) -> standard_artifacts.Model:
  """A fake Trainer output; movie_embeddings rows are in MOVIE_IDS order."""
  module = QueryModel(USER_IDS, user_embeddings)
  tf.saved_model.save(module, os.path.join(uri, artifacts.QUERY_MODEL_DIR),
                      signatures={serving.QUERY_SIGNATURE: module.serve})
  os.makedirs(os.path.join(uri, artifacts.CANDIDATES_DIR))
  with open(os.path.join(uri, artifacts.CANDIDATES_DIR, artifacts.MOVIE_IDS_FILE),
            "w") as f:
    f.write("".join(f"{m}\n" for m in catalog))
  rows = [MOVIE_IDS.index(m) for m in catalog]
  np.save(os.path.join(uri, artifacts.CANDIDATES_DIR, artifacts.EMBEDDINGS_FILE),
          movie_embeddings[rows].astype(np.float32))
  model = standard_artifacts.Model()
  model.uri = uri
  model.id = model_id
  return model


def oracle_embeddings(broken_groups=()):
  """One-hot group / block embeddings; users of `broken_groups` point away from theirs."""
  users = np.zeros([len(USER_IDS), NUM_GROUPS], np.float32)
  for user in range(len(USER_IDS)):
    users[user, group(user)] = -1.0 if group(user) in broken_groups else 1.0
  movies = np.zeros([NUM_MOVIES, NUM_GROUPS], np.float32)
  for movie in range(NUM_RATED_MOVIES):
    movies[movie, movie // BLOCK] = 1.0
  return users, movies


def random_embeddings(seed=7):
  rng = np.random.default_rng(seed)
  return (rng.normal(size=[len(USER_IDS), 16]).astype(np.float32),
          rng.normal(size=[NUM_MOVIES, 16]).astype(np.float32))


def write_catalog(uri: str, left_out=()) -> standard_artifacts.Examples:
  """MovieLensExampleGen's `movies` output: every movie's id, title and genres (but the
  movie indices `left_out`), split 'catalog'."""
  artifact = standard_artifacts.Examples()
  artifact.uri = uri
  artifact.split_names = artifact_utils.encode_split_names(["catalog"])
  split_dir = artifact_utils.get_split_uri([artifact], "catalog")
  os.makedirs(split_dir)
  with tf.io.TFRecordWriter(os.path.join(split_dir, "data_tfrecord-00000.gz"),
                            options="GZIP") as writer:
    for movie, movie_id in enumerate(MOVIE_IDS):
      if movie in left_out:
        continue
      feature = {
          features.MOVIE_ID: tf.train.Feature(bytes_list=tf.train.BytesList(
              value=[movie_id.encode()])),
          features.MOVIE_TITLE: tf.train.Feature(bytes_list=tf.train.BytesList(
              value=[movie_title(movie).encode()])),
          features.MOVIE_GENRES: tf.train.Feature(bytes_list=tf.train.BytesList(
              value=[b"Drama", b"Comedy"][:1 + movie % 2])),  # Lists of 1 and 2 genres.
      }
      writer.write(tf.train.Example(
          features=tf.train.Features(feature=feature)).SerializeToString())
  return artifact


def movie_title(movie: int) -> str:
  return f"Película {movie} <&> (1999)"  # Non-ASCII and HTML-special on purpose.


def run_evaluator(workdir, name, model, baseline=None, movies=None, **exec_properties):
  evaluation = standard_artifacts.ModelEvaluation()
  evaluation.uri = str(workdir["root"] / name / "evaluation")
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = str(workdir["root"] / name / "blessing")
  input_dict = {executor.EXAMPLES_KEY: [workdir["examples"]], executor.MODEL_KEY: [model]}
  if baseline is not None:
    input_dict[executor.BASELINE_MODEL_KEY] = [baseline]
  if movies is not None:
    input_dict[executor.MOVIES_KEY] = [movies]
  executor.Executor().Do(input_dict, {executor.EVALUATION_KEY: [evaluation],
                                      executor.BLESSING_KEY: [blessing]}, exec_properties)
  return results_lib.load(evaluation.uri), evaluation, blessing


def catalog_column(movie: int) -> int:
  """Catalog column of a movie index (position of its id in CATALOG)."""
  return CATALOG.index(MOVIE_IDS[movie])


class ReportParser(html.parser.HTMLParser):
  """Collects <img> sources, <td> cells (attributes and text) and external references."""

  def __init__(self):
    super().__init__()
    self.images, self.cells, self.external = [], [], []
    self._cell = None

  def handle_starttag(self, tag, attrs):
    attrs = dict(attrs)
    if tag == "img":
      self.images.append(attrs["src"])
    if tag == "td":
      self._cell = (attrs, [])
    for name in ("src", "href"):
      if attrs.get(name, "").startswith(("http:", "https:", "//")):
        self.external.append(attrs[name])

  def handle_endtag(self, tag):
    if tag == "td" and self._cell is not None:
      self.cells.append((self._cell[0], "".join(self._cell[1]).strip()))
      self._cell = None

  def handle_data(self, data):
    if self._cell is not None:
      self._cell[1].append(data)


def value_at(metrics_json, key):
  value = metrics_json
  for part in key.split("/"):
    value = value[int(part)] if isinstance(value, list) else value[part]
  return value


def assert_shown_as(text, value, key):
  if value is None:
    assert text == "-", key
  elif isinstance(value, bool):
    assert text == ("yes" if value else "no"), key
  elif isinstance(value, int):
    assert text == str(value), key
  elif isinstance(value, float):
    # Rounded to the decimals shown (a tie such as .25 to one decimal may go either way).
    decimals = len(text.split(".")[1])
    assert decimals >= 1, key
    assert abs(float(text) - value) <= 0.5 * 10**-decimals * (1 + 1e-9), key
  else:
    assert text == value, key
