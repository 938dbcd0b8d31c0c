"""avrec.rerank."""
