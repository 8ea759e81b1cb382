"""UserContext: the validation split and each user's history (the context towers' input)."""
