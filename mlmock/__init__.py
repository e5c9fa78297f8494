"""Stand-in for the model server. It plays an outside service: it imports nothing of ours."""
