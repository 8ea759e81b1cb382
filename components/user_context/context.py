"""The pure rules of UserContext, shared by its Beam executor and the tests.

A user's train history is ordered most recent first: by timestamp, descending; ratings
with the same timestamp by movie id, descending byte order (so the order never depends
on file order or sharding). A rating's context is the first `max_context` movies of that
history other than the rating's own movie:

  * a train rating: its user's other fitted train movies (the train split without the
    validation ratings), earlier and later ones; never itself.
  * a validation rating (the Trainer's epoch choice): its user's fitted train movies.
  * serving and the Evaluator: the user's whole train history (the model stores it).

UserContext writes each user's history once (`features.HISTORY_FEATURES`); the Trainer
joins it to the ratings by user and drops the rating's own movie, so a history costs once
per user, not once per rating.

Why not only earlier movies (a causal context)? With the random split the eval ratings are
spread over the whole history, and the query at serving uses everything the user rated:
causal contexts would train the towers on queries unlike the ones they serve.

Which train ratings go to the validation split, and the order every split is written in,
follow seeded hashes of (user, movie) (`pair_hash`): the same data and seed give the same
splits, written in the same order, however Beam shards and orders the work.
"""
import hashlib
from typing import Iterable, List, Tuple

# Beam encodes int keys as signed 64-bit varints: the hashes keep 63 bits.
_HASH_BITS = 63


def recent_first(history: Iterable[Tuple[int, bytes]]) -> List[bytes]:
  """Movie ids of (timestamp, movie_id) pairs, most recent first (ties: larger id first)."""
  return [movie_id for _, movie_id in sorted(history, reverse=True)]


def pair_hash(user_id: bytes, movie_id: bytes, seed: int, salt: bytes) -> int:
  """A `_HASH_BITS`-bit hash of (user, movie), reproducible from the seed; `salt`
  separates uses."""
  digest = hashlib.blake2b(
      b"\0".join((salt, str(seed).encode(), user_id, movie_id)), digest_size=8).digest()
  return int.from_bytes(digest, "big") >> (64 - _HASH_BITS)


def is_validation(user_id: bytes, movie_id: bytes, fraction: float, seed: int) -> bool:
  """Whether a train rating goes to the validation split: a `fraction` of the pairs."""
  return pair_hash(user_id, movie_id, seed, b"validation") < fraction * (1 << _HASH_BITS)


def write_order(user_id: bytes, movie_id: bytes, seed: int) -> int:
  """The rating's place in its split's seeded written order."""
  return pair_hash(user_id, movie_id, seed, b"order")
