"""deploy/k8s, rendered as kustomize would, validated offline: every object against the
schemas of the pinned Kubernetes release, the ScaledObject against KEDA's CRD schema, and
the properties the deployment relies on (each autoscaled queue's real Dramatiq key, media
nodes as a StatefulSet with a PDB, readiness on /v2/health/ready, secrets only referenced)."""

from __future__ import annotations

import time
import uuid

import dramatiq
import jsonschema
import kubernetes_validate
import pytest
import redis

from api.cli import CHILDREN
from core.settings import RedisSettings, load_settings
from jobs.broker import DEFAULT_QUEUE, DETECT_QUEUE, MEDIA_START_QUEUE, SHARED_QUEUES, build_broker
from jobs.client import JobClient
from jobs.node.protocol import DetectFrame
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
ROLES = {*CHILDREN, "detector"}  # what `vas` runs in a pod (`up` is for one machine)
# The autoscaled workloads: ScaledObject name → the one queue it scales on.
SCALED_QUEUES = {"vas-worker": DEFAULT_QUEUE, "vas-detector": DETECT_QUEUE}


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
        "Deployment/vas-detector", "ScaledObject/vas-detector",
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
            assert container["args"][0] in ROLES, container["args"]
            assert {"cpu", "memory"} <= set(container["resources"]["requests"])
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert config["VAS_DATA_DIR"] in mounts, "recordings are shared by every role"


def test_workers_detectors_and_nodes_are_probed_on_their_metrics_port(objects, config):
    """They serve no other HTTP: their metrics server (VAS_METRICS_PORT) answers while the
    process does."""
    probed = set()
    for obj in objects:
        if obj["kind"] not in WORKLOAD_KINDS:
            continue
        for container in containers(obj):
            if container["args"][0] not in {"worker", "detector", "media-node"}:
                continue
            probed.add(container["args"][0])
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            assert ports == {"metrics": int(config["VAS_METRICS_PORT"])}, _label(obj)
            assert container["livenessProbe"]["httpGet"] == {"path": "/metrics",
                                                             "port": "metrics"}, _label(obj)
    assert probed == {"worker", "detector", "media-node"}


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


def test_media_nodes_are_a_statefulset_with_a_pdb_and_a_graceful_stop(objects, config):
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
    # Ready once its metrics server answers: rollouts and drains wait for it (no Service).
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == int(config["VAS_METRICS_PORT"])
    assert container["readinessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    env = {e["name"]: e for e in container["env"]}
    assert env["VAS_WEBRTC_ANNOUNCED_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.hostIP"
    # A stable identity for leases: a restarted pod keeps its node id.
    assert env["VAS_NODE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def _served_queues(workload, config, secret_example):
    """The Dramatiq queues the workload's container serves: `vas detector` the detect queue
    (api/cli.py:cmd_detector), `vas worker` its VAS_WORKER_QUEUES as core.settings reads it."""
    (container,) = containers(workload)
    if container["args"] == ["detector"]:
        return {DETECT_QUEUE}
    assert container["args"] == ["worker"], container["args"]
    env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
    settings = load_settings({**config, **secret_example["stringData"], **env})
    return set(settings.media.worker_queues)


def test_each_autoscaled_workload_serves_exactly_the_queue_it_scales_on(objects, config,
                                                                       secret_example):
    scaled = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ScaledObject"}
    assert set(scaled) == set(SCALED_QUEUES)
    for name, queue in SCALED_QUEUES.items():
        target = scaled[name]["spec"]["scaleTargetRef"]
        workload = find(objects, target["kind"], target["name"])
        assert _served_queues(workload, config, secret_example) == {queue}, name
        (trigger,) = scaled[name]["spec"]["triggers"]
        assert trigger["type"] == "redis"
        assert trigger["metadata"]["listName"] == \
            f"{config['VAS_REDIS_NAMESPACE']}:dramatiq:{queue}"
    # The housekeeping loop (periodic jobs) runs in the workers: one always runs.
    assert scaled["vas-worker"]["spec"]["minReplicaCount"] >= 1
    # Every shared queue is served by an autoscaled workload, but media-start: media nodes
    # take it, and they are scaled by decision, not by a queue.
    assert set(SCALED_QUEUES.values()) == set(SHARED_QUEUES) - {MEDIA_START_QUEUE}


def _enqueue_as_vas_does(broker, queue: str) -> None:
    if queue == DETECT_QUEUE:  # a media node's detection job, through its own client
        frame = DetectFrame(camera_id=uuid.uuid4(), stream_id=uuid.uuid4(),
                            wallclock=time.time(), frame_size=(640, 360),
                            source_size=(640, 360), motion=[], jpeg=b"\xff\xd8\xff\xd9")
        assert JobClient(broker, {}).send_detection(frame, max_depth=100)
    else:
        broker.enqueue(dramatiq.Message(queue_name=queue, actor_name="noop", args=(),
                                        kwargs={}, options={}))


@pytest.mark.parametrize("scaled_object", sorted(SCALED_QUEUES))
def test_keda_reads_the_real_dramatiq_queue_key(objects, config, scaled_object):
    scaled = find(objects, "ScaledObject", scaled_object)
    queue = SCALED_QUEUES[scaled_object]
    (trigger,) = scaled["spec"]["triggers"]
    namespace = config["VAS_REDIS_NAMESPACE"]
    list_name = trigger["metadata"]["listName"]

    # The same key, with a namespace of the test's own, is where VAS's broker really puts a
    # waiting message of that queue (on the machine's Redis).
    test_namespace = f"vas-deploy-{uuid.uuid4().hex[:8]}"
    broker = build_broker(RedisSettings(url=REDIS_URL, namespace=test_namespace))
    client = redis.Redis.from_url(REDIS_URL)
    key = test_namespace + list_name.removeprefix(namespace)
    try:
        broker.declare_queue(queue)
        assert client.llen(key) == 0
        for _ in range(3):
            _enqueue_as_vas_does(broker, queue)
        assert client.llen(key) == 3
    finally:
        broker.close()
        keys = list(client.scan_iter(match=f"{test_namespace}:*"))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.mark.parametrize("scaled_object", sorted(SCALED_QUEUES))
def test_keda_reads_redis_from_the_workloads_environment(objects, secret_example,
                                                         scaled_object):
    scaled = find(objects, "ScaledObject", scaled_object)
    metadata = scaled["spec"]["triggers"][0]["metadata"]
    secret_keys = set(secret_example["stringData"])
    assert metadata["addressFromEnv"] in secret_keys
    assert metadata["passwordFromEnv"] in secret_keys
    assert "address" not in metadata and "password" not in metadata
    target = scaled["spec"]["scaleTargetRef"]
    (container,) = containers(find(objects, target["kind"], target["name"]))
    assert {"secretRef": {"name": "vas-secrets"}} in container["envFrom"]
