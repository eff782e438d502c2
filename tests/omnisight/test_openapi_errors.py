"""Every OmniSight operation documents its error answers with the `{"error": {…}}` schema
(VAS operations keep `{"detail": …}`)."""

from __future__ import annotations


def _schema(spec: dict, response: dict) -> dict:
    schema = response["content"]["application/json"]["schema"]
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return dict(schema)


async def test_omnisight_operations_document_their_errors(client):
    spec = (await client.get("/schema/openapi.json")).json()
    omnisight = {path: item for path, item in spec["paths"].items()
                 if path.startswith("/api/v1/") and not path.startswith("/api/v1/devices")}
    assert "/api/v1/cameras/{camera_id}/stream/start" in omnisight
    for path, item in omnisight.items():
        for method, operation in item.items():
            if method not in ("get", "put", "post", "delete", "patch"):
                continue
            responses = operation["responses"]
            errors = {int(code) for code in responses if int(code) >= 400}
            assert {400, 500} <= errors, (path, method)
            if operation.get("security") and any(operation["security"]):
                assert {401, 403} <= errors, (path, method)
            if "{" in path:
                assert 404 in errors, (path, method)
            for code in errors:
                schema = _schema(spec, responses[str(code)])
                assert schema["required"] == ["error"], (path, method, code)
                assert schema["properties"]["error"]["required"] == ["code", "message", "details"]
    start = omnisight["/api/v1/cameras/{camera_id}/stream/start"]["post"]["responses"]
    assert {"502", "503", "504", "409"} <= set(start)
    assert "429" in omnisight["/api/v1/auth/login"]["post"]["responses"]
    device = spec["paths"]["/api/v1/devices/{device_id}"]["get"]["responses"]["404"]
    assert _schema(spec, device)["required"] == ["detail"]
