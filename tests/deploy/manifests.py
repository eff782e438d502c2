"""Render deploy/k8s the way `kustomize build` does, and validate objects offline.

No `kustomize` binary is packaged for Debian bookworm and kubectl does not come from its
registries, so the tests render the kustomization themselves. Only the fields that
deploy/k8s uses are supported (resources, namespace, labels without selectors, images);
any other field fails the render, so a new kustomize feature cannot slip past unvalidated.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S_DIR = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.33.0"  # pinned: the schemas of this release (kubernetes-validate)
KEDA_SCHEMA = Path(__file__).parent / "keda" / "scaledobject-v1alpha1.schema.json"

SUPPORTED_FIELDS = {"apiVersion", "kind", "namespace", "labels", "resources", "images"}
# Kinds that live outside namespaces (kustomize leaves their metadata.namespace alone).
CLUSTER_SCOPED = {"Namespace", "PersistentVolume", "StorageClass", "ClusterRole",
                  "ClusterRoleBinding", "CustomResourceDefinition"}

Obj = dict[str, Any]


def load_yaml_documents(path: Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _containers(obj: Obj) -> list[Obj]:
    spec = obj.get("spec", {}).get("template", {}).get("spec", {})
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def _apply_images(obj: Obj, images: list[Obj]) -> None:
    for container in _containers(obj):
        name, _, tag = container["image"].partition(":")
        for image in images:
            if image["name"] == name:
                new_name = image.get("newName", name)
                new_tag = image.get("newTag", tag)
                container["image"] = f"{new_name}:{new_tag}" if new_tag else new_name


def render(directory: Path = K8S_DIR) -> list[Obj]:
    """The objects `kustomize build directory` would print, for the fields we use."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(kustomization) - SUPPORTED_FIELDS
    if unsupported:
        raise NotImplementedError(f"kustomization fields not rendered by the tests: {unsupported}")
    objects: list[Obj] = []
    for resource in kustomization.get("resources", []):
        path = directory / resource
        objects += render(path) if path.is_dir() else load_yaml_documents(path)
    objects = copy.deepcopy(objects)
    for obj in objects:
        metadata = obj.setdefault("metadata", {})
        if "namespace" in kustomization and obj["kind"] not in CLUSTER_SCOPED:
            metadata["namespace"] = kustomization["namespace"]
        for entry in kustomization.get("labels", []):
            if entry.get("includeSelectors") or entry.get("includeTemplates"):
                raise NotImplementedError("labels with includeSelectors/includeTemplates")
            metadata.setdefault("labels", {}).update(entry["pairs"])
        _apply_images(obj, kustomization.get("images", []))
    return objects


def validate_kubernetes(obj: Obj) -> None:
    """Strict validation (unknown fields are errors) against the pinned release's schemas."""
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def _strict(schema: Any) -> Any:
    """The CRD schema as the API server applies it with strict field validation: an object
    with declared properties admits no others, unless it preserves unknown fields."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _strict(value) for key, value in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if "properties" in schema and isinstance(schema["properties"], dict):
        out["properties"] = {k: _strict(v) for k, v in schema["properties"].items()}
    return out


@cache
def keda_scaledobject_schema() -> Obj:
    schema = _strict(json.loads(KEDA_SCHEMA.read_text()))
    # The CRD leaves metadata to the API server: check it as an ObjectMeta would be.
    schema["properties"]["metadata"] = {"type": "object", "required": ["name"]}
    return dict(schema)


def validate_scaledobject(obj: Obj) -> None:
    assert obj["apiVersion"] == "keda.sh/v1alpha1", obj["apiVersion"]
    jsonschema.Draft7Validator(keda_scaledobject_schema()).validate(obj)


def validate(obj: Obj) -> None:
    """Validate one object against the schema of its kind."""
    if obj["kind"] == "ScaledObject":
        validate_scaledobject(obj)
    else:
        validate_kubernetes(obj)


def find(objects: list[Obj], kind: str, name: str) -> Obj:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} objects"
    return matches[0]


def containers(obj: Obj) -> list[Obj]:
    """The containers (init containers included) of a workload's pod template."""
    return _containers(obj)
