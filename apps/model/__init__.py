"""`kgfusion model`: the core layer's commands."""
