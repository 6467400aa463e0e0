"""Pydantic models at every boundary: API bodies, stored records, queue jobs.

No module here postpones its annotations (`from __future__ import annotations`): pydantic
would then compile each of them from a string when the class is made, some 1,100 of them
in a cold start, about 25 ms of the API's. A method's annotation that names its own class
is quoted instead.
"""
