"""Dramatiq job runner of VAS: the broker, the actors, the API's typed client for jobs, the
worker and media-node processes, and the job bodies. `jobs.node` is one media node."""
