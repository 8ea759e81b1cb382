"""The MovieLens data sets, apart from TFX: file formats, reading, and synthetic data.

  formats.py     one declarative record per GroupLens file layout, and the row parsers
  sources.py     finding the layout in a directory or zip, streaming lines, content hash
  readers.py     the catalog and the ratings (in batches) of a source, bad lines listed
  duplicates.py  the policy for a (user, movie) pair rated more than once
  errors.py      the errors and the bad-line log
  synthetic.py   deterministic synthetic data in the ml-100k format (also a CLI)

Imports only `contracts` of the project, so components, runners, benchmarks and tests
can all use it.
"""
