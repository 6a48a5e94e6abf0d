"""kgfusion knowledge layer: RDF graphs, FAISS entity retrieval, rule bases and fusion with evidence."""
