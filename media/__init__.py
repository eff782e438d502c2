"""PyAV/aiortc media plumbing: ingest, GOP cache, HLS; knows nothing of HTTP or the database."""
