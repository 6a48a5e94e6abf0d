"""Recommendation app: MovieLens readers, a time-based protocol, ranking metrics and baselines."""
