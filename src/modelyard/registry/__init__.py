"""The model registry: versions and aliases on the shared volume, what an artifact holds, its input
schema, and the load gate that vouches for its bytes before anything unpickles them."""
