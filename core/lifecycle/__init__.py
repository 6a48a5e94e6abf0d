"""The maintenance half of the model chain: corrections, continual updates, versions, drift (issue 16)."""
