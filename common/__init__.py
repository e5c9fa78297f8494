"""Code shared by the API gateway and the workers."""
