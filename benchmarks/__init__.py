"""Benchmarks of VAS; each module runs with `python -m benchmarks.<name>` and prints a
Markdown table for docs/performance.md."""
