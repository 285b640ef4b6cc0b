"""The compiled runtime: a registered version converted to ONNX, verified against scikit-learn,
measured, and chosen (or not) to serve it."""
