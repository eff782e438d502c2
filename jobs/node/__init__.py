"""One media node: its runtime (the streams it owns), each stream's pipeline and viewers,
and the typed protocol it speaks with the API."""
