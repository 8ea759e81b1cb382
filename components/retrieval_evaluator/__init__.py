"""RetrievalEvaluator: full-catalog retrieval metrics and blessing of two-tower models."""
