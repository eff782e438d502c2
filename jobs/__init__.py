"""Dramatiq job runner of VAS: the broker, the actors, the worker and media-node processes."""
