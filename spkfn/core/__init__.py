"""Shared machinery used by every stage: chunked execution, atomic writes, progress, validation."""
