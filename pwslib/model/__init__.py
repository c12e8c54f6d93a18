"""The model: backbone -> FPN pixel decoder -> per-pixel embeddings; transformer decoder -> queries."""
