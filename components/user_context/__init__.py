"""UserContext: adds each rating's context (the user's other train movies) to the examples."""
