"""Pure content processing: bytes in, values out; no AWS."""
