"""Everyday requests answered without the LLM: hassil sentence templates and their handlers."""
