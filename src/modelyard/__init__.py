"""modelyard: serve, batch-score and schedule scikit-learn models."""

__version__ = "0.1.0"
