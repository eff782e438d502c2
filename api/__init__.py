"""The Litestar API of VAS: routes, auth guard, error mapping, CLI."""
