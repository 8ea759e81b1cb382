"""trainer_module.signatures: what every serving signature does to a request first."""
import tensorflow as tf

from contracts import features
from contracts import serving
from trainer_module import signatures


def _echo(inputs):
  return dict(inputs)


def test_a_signature_strips_whitespace_around_ids_as_the_cli_and_readers_do():
  signature = signatures.query_signature(
      _echo, [features.USER_ID, features.CONTEXT_MOVIE_IDS], [signatures.EXCLUDE_SPEC])
  result = signature(user_id=tf.constant([" 42", "7\t", "5"]),
                     context_movie_ids=tf.constant([[" 1", ""], ["2 ", " "], ["", ""]]),
                     exclude_movie_ids=tf.constant([[" 3"], [""], ["4"]]))
  assert result[features.USER_ID].numpy().tolist() == [b"42", b"7", b"5"]
  assert result[features.CONTEXT_MOVIE_IDS].numpy().tolist() == [
      [b"1", b""], [b"2", b""], [b"", b""]]
  assert result[serving.EXCLUDE_MOVIE_IDS].numpy().tolist() == [[b"3"], [b""], [b"4"]]


def test_only_ids_are_stripped():
  signature = signatures.query_signature(_echo, [features.MOVIE_ID, features.MOVIE_TITLE])
  result = signature(movie_id=tf.constant([" 9 "]), movie_title=tf.constant([" Heat  "]))
  assert result[features.MOVIE_ID].numpy().tolist() == [b"9"]
  assert result[features.MOVIE_TITLE].numpy().tolist() == [b" Heat  "]
