"""Galleries: folders of clips indexed by the model, and the vector search over them."""
