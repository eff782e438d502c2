"""deploy/k8s, rendered as kustomize would, validated offline: every object against the
schemas of the pinned Kubernetes release, the ScaledObject against KEDA's CRD schema, and
the properties the deployment relies on (the real Dramatiq queue key, media nodes as a
StatefulSet with a PDB, readiness on /v2/health/ready, secrets only referenced)."""

from __future__ import annotations

import uuid

import dramatiq
import jsonschema
import kubernetes_validate
import pytest
import redis

from api.cli import CHILDREN
from core.settings import RedisSettings, load_settings
from jobs.broker import DEFAULT_QUEUE, build_broker
from tests.conftest import REDIS_URL
from tests.deploy.manifests import (
    K8S_DIR,
    containers,
    find,
    load_yaml_documents,
    render,
    validate,
    validate_kubernetes,
    validate_scaledobject,
)

# What production refuses to start without, plus the other secrets the manifests use.
SECRET_NAMES = {"JWT_SECRET_KEY", "VAS_CREDENTIALS_KEY", "DATABASE_URL", "REDIS_URL",
                "VAS_ADMIN_CLIENT_SECRET", "REDIS_ADDRESS", "REDIS_PASSWORD"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet"}


@pytest.fixture(scope="module")
def objects():
    return render()


@pytest.fixture(scope="module")
def config(objects):
    return find(objects, "ConfigMap", "vas-config")["data"]


@pytest.fixture(scope="module")
def secret_example():
    (secret,) = load_yaml_documents(K8S_DIR / "secret.example.yaml")
    return secret


def _label(obj):
    return f"{obj['kind']}/{obj['metadata']['name']}"


def test_every_rendered_object_validates(objects):
    kinds = sorted(_label(o) for o in objects)
    assert kinds == sorted([
        "Namespace/vas", "ConfigMap/vas-config", "Service/vas-postgres", "Service/vas-redis",
        "PersistentVolumeClaim/vas-data",
        "Deployment/vas-api", "Service/vas-api", "HorizontalPodAutoscaler/vas-api",
        "PodDisruptionBudget/vas-api",
        "Deployment/vas-worker", "ScaledObject/vas-worker",
        "StatefulSet/vas-media-node", "Service/vas-media-node",
        "PodDisruptionBudget/vas-media-node",
    ])
    for obj in objects:
        validate(obj)
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "vas", _label(obj)


def test_the_secret_example_validates_and_is_not_applied(objects, secret_example):
    validate_kubernetes(secret_example)
    assert not [o for o in objects if o["kind"] == "Secret"], "secrets are never in the manifests"


def test_the_validators_reject_what_kubernetes_and_keda_would(objects):
    """The validation is real: a wrong field is caught in both kinds of schema."""
    api = find(objects, "Deployment", "vas-api")
    broken = {**api, "spec": {**api["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_kubernetes(broken)
    scaled = find(objects, "ScaledObject", "vas-worker")
    with pytest.raises(jsonschema.ValidationError):
        validate_scaledobject({**scaled, "spec": {**scaled["spec"], "maxReplicas": 8}})
    trigger = dict(scaled["spec"]["triggers"][0])
    del trigger["type"]
    with pytest.raises(jsonschema.ValidationError):
        validate_scaledobject({**scaled, "spec": {**scaled["spec"], "triggers": [trigger]}})


def test_settings_from_the_manifests_start_vas_in_production(config, secret_example):
    """The ConfigMap and the Secret's keys make a complete production configuration."""
    settings = load_settings({**config, **secret_example["stringData"]})
    assert settings.server.production
    assert settings.database.is_postgres
    assert settings.server.port == 8000
    assert not SECRET_NAMES & set(config), "secrets belong in the Secret, not the ConfigMap"
    assert set(secret_example["stringData"]) >= SECRET_NAMES


def test_secrets_are_referenced_never_inlined(objects):
    for obj in objects:
        if obj["kind"] not in WORKLOAD_KINDS:
            continue
        for container in containers(obj):
            refs = [e for e in container.get("envFrom", []) if "secretRef" in e]
            assert [r["secretRef"]["name"] for r in refs] == ["vas-secrets"], _label(obj)
            for env in container.get("env", []):
                assert env["name"] not in SECRET_NAMES, f"{_label(obj)} inlines {env['name']}"


def test_every_container_runs_a_vas_role_of_the_image_as_non_root(objects, config):
    for obj in objects:
        if obj["kind"] not in WORKLOAD_KINDS:
            continue
        spec = obj["spec"]
        assert spec["selector"]["matchLabels"].items() <= \
            spec["template"]["metadata"]["labels"].items(), _label(obj)
        pod = spec["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001  # the image's user
        for container in containers(obj):
            assert container["image"] == "localhost/vas:latest"
            assert "command" not in container, "the image's entrypoint is `vas`"
            assert container["args"][0] in CHILDREN, container["args"]
            assert {"cpu", "memory"} <= set(container["resources"]["requests"])
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert config["VAS_DATA_DIR"] in mounts, "recordings are shared by every role"


def test_api_probes_use_the_health_routes_and_the_hpa_scales_it(objects, config):
    api = find(objects, "Deployment", "vas-api")
    (container,) = containers(api)
    assert container["args"] == ["api"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == int(config["VAS_PORT"])
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    service = find(objects, "Service", "vas-api")
    assert service["spec"]["selector"].items() <= api["spec"]["template"]["metadata"]["labels"].items()
    hpa = find(objects, "HorizontalPodAutoscaler", "vas-api")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": "vas-api"}
    assert hpa["spec"]["minReplicas"] >= 2


def test_media_nodes_are_a_statefulset_with_a_pdb_and_a_graceful_stop(objects):
    nodes = find(objects, "StatefulSet", "vas-media-node")
    labels = nodes["spec"]["template"]["metadata"]["labels"]
    pdb = find(objects, "PodDisruptionBudget", "vas-media-node")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1
    governing = find(objects, "Service", nodes["spec"]["serviceName"])
    assert governing["spec"]["clusterIP"] == "None"
    pod = nodes["spec"]["template"]["spec"]
    # SIGTERM hands the streams over; the kubelet must wait longer than Dramatiq's 10 s stop.
    assert pod["terminationGracePeriodSeconds"] >= 30
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    anti = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["topologyKey"] == "kubernetes.io/hostname"
    (container,) = containers(nodes)
    assert container["args"] == ["media-node"]
    env = {e["name"]: e for e in container["env"]}
    assert env["VAS_WEBRTC_ANNOUNCED_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.hostIP"
    # A stable identity for leases: a restarted pod keeps its node id.
    assert env["VAS_NODE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_the_worker_scales_on_the_real_dramatiq_queue_key(objects, config):
    scaled = find(objects, "ScaledObject", "vas-worker")
    target = scaled["spec"]["scaleTargetRef"]
    worker = find(objects, target["kind"], target["name"])
    assert containers(worker)[0]["args"] == ["worker"]
    assert scaled["spec"]["minReplicaCount"] >= 1, "housekeeping needs one worker"
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis"
    namespace = config["VAS_REDIS_NAMESPACE"]
    list_name = trigger["metadata"]["listName"]
    assert list_name == f"{namespace}:dramatiq:{DEFAULT_QUEUE}"

    # The same key, with a namespace of the test's own, is where VAS's broker really puts a
    # waiting message of the default queue (on the machine's Redis).
    test_namespace = f"vas-deploy-{uuid.uuid4().hex[:8]}"
    broker = build_broker(RedisSettings(url=REDIS_URL, namespace=test_namespace))
    client = redis.Redis.from_url(REDIS_URL)
    key = test_namespace + list_name.removeprefix(namespace)
    try:
        broker.declare_queue(DEFAULT_QUEUE)
        assert client.llen(key) == 0
        for _ in range(3):
            broker.enqueue(dramatiq.Message(queue_name=DEFAULT_QUEUE, actor_name="noop",
                                            args=(), kwargs={}, options={}))
        assert client.llen(key) == 3
    finally:
        broker.close()
        keys = list(client.scan_iter(match=f"{test_namespace}:*"))
        if keys:
            client.delete(*keys)
        client.close()


def test_keda_reads_redis_from_the_workers_environment(objects, secret_example):
    scaled = find(objects, "ScaledObject", "vas-worker")
    metadata = scaled["spec"]["triggers"][0]["metadata"]
    secret_keys = set(secret_example["stringData"])
    assert metadata["addressFromEnv"] in secret_keys
    assert metadata["passwordFromEnv"] in secret_keys
    assert "address" not in metadata and "password" not in metadata
