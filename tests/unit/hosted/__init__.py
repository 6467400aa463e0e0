"""Small functions laid out as `functions/` is, for the function host's tests."""
