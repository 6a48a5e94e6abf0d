"""HTTP serving of the three apps (FastAPI; uvicorn or Ray Serve)."""
