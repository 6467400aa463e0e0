"""Pydantic models at every boundary: API bodies, stored records, queue jobs."""
