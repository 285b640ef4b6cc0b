"""Models made ready to score: loaded through the load gate with their runtime, and kept in step
with the registry's production aliases for the API and the batch workers alike."""
