"""Scoring: records checked against a model's input schema, then predicted by scikit-learn itself or
by a verified compiled graph. No HTTP, no queue: the API, the workers and the CLI all call this."""
