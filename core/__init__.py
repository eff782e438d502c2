"""Shared core of VAS: settings, tables, the error tree and the domain services.

Both `api` and `jobs` import it; it imports neither (nor `media`).
"""
