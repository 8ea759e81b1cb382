"""The numeric core shared by the Trainer's validation and the Evaluator.

  scores.py     how query embeddings score movies (one vector or several), the score
                function type, and the ranking stage's order key
  rankings.py   ranking the whole catalog for a set of users, train movies excluded
  query_time.py which held-out rating sets a user's query time

numpy only: no TensorFlow, no project package but these modules. The Trainer (choosing
the epoch and the EASE factor's weight on its validation slice) and the Evaluator
(scoring the eval split) rank with the same code, so the validation hit rate is the
Evaluator's hit rate on other pairs.
"""
