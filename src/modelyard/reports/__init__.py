"""Reports of batch runs: reference profiles, counts on their bins, drift scores."""
