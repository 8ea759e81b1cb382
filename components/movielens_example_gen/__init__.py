"""MovieLensExampleGen: reads GroupLens MovieLens files (or the synthetic default)."""
