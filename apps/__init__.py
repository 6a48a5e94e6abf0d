"""kgfusion apps: the Click command `kgfusion`, domain apps and Streamlit pages over the library."""
