"""Unit tests of the work4life chart: render it with Helm (helm-python-sdk, offline) and check
what operators rely on. Run: python -m pytest charts/work4life/tests (scripts/chart-check.sh)."""

from __future__ import annotations

import base64
import copy
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "scripts"))
import chart  # noqa: E402  scripts/chart.py

SERVICES = ["identity", "intake", "grants", "coaching", "notifications"]
CI_FILES = sorted((chart.CI_VALUES).glob("*.yaml"))
APP_VERSION = yaml.safe_load((chart.CHART / "Chart.yaml").read_text())["appVersion"]
SECRETS = yaml.safe_load((chart.CI_VALUES / "default-values.yaml").read_text())
# The call graph the chart encodes by default (callee: callers). Every service calls identity
# for its key set (GetKeySet), to verify access tokens.
GRAPH = {
    "identity": {"gateway", "intake", "grants", "coaching", "notifications"},
    "intake": {"gateway", "grants", "notifications", "coaching"},
    "grants": {"gateway", "coaching"},
    "coaching": {"gateway"},
    "notifications": {"gateway"},
}


def values(*overrides: dict[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
    merged = copy.deepcopy(SECRETS if base is None else base)
    for o in overrides:
        chart.merge(merged, copy.deepcopy(o))
    return merged


def render(v: dict[str, Any]) -> list[dict[str, Any]]:
    return chart.objects(chart.render(v))


def ci(name: str) -> list[dict[str, Any]]:
    return render(chart.load_values([chart.CI_VALUES / name]))


def of_kind(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind]


def by_name(objs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in of_kind(objs, kind)}


def component(obj: dict[str, Any]) -> str:
    return obj["metadata"]["labels"]["app.kubernetes.io/component"]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, selector
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def pod_templates(objs: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, pod template) of every Deployment and Job."""
    return [(o, o["spec"]["template"]) for o in objs if o["kind"] in ("Deployment", "Job")]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


ALL_RENDERS = pytest.mark.parametrize("ci_file", [p.name for p in CI_FILES])
# The platform's service account: identity keeps it in existence, notifications calls intake as it.
SERVICE_ACCOUNT_KEYS = {"W4L_SERVICE_CLIENT_ID", "W4L_SERVICE_CLIENT_SECRET"}
# Egress to the message providers (networkPolicy.providers), notifications only.
PROVIDER_PORTS = {443, 587, 465, 25}


# ---- every render -----------------------------------------------------------------------------


@ALL_RENDERS
def test_every_object_has_the_standard_labels(ci_file: str) -> None:
    for obj in ci(ci_file):
        labels = obj["metadata"].get("labels", {})
        for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/managed-by", "app.kubernetes.io/part-of", "helm.sh/chart"):
            assert key in labels, f"{chart.kind_name(obj)} lacks {key}"


@ALL_RENDERS
def test_every_pod_is_hardened(ci_file: str) -> None:
    objs = ci(ci_file)
    assert pod_templates(objs)
    for workload, template in pod_templates(objs):
        spec, name = template["spec"], chart.kind_name(workload)
        assert spec["automountServiceAccountToken"] is False, name
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 65532, name
        assert psc["seccompProfile"]["type"] == "RuntimeDefault", name
        assert "hostNetwork" not in spec and "hostPID" not in spec, name
        for c in spec["containers"] + spec.get("initContainers", []):
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["privileged"] is False, name
            assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 65532, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert sc["seccompProfile"]["type"] == "RuntimeDefault", name
            assert c["resources"]["requests"] and c["resources"]["limits"], name
            # The image is distroless: an exec hook or probe would fail for want of a shell.
            assert "exec" not in c.get("lifecycle", {}).get("preStop", {}), name
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert "exec" not in c.get(probe, {}), name
    for sa in of_kind(objs, "ServiceAccount"):
        assert sa["automountServiceAccountToken"] is False, chart.kind_name(sa)


@ALL_RENDERS
def test_probes_ask_the_health_service_for_the_pods_service(ci_file: str) -> None:
    deployments = of_kind(ci(ci_file), "Deployment")
    assert deployments
    for d in deployments:
        c = d["spec"]["template"]["spec"]["containers"][0]
        want = "" if component(d) == "all" else component(d)
        assert c["args"] == [f"--target={component(d)}", "serve"]
        for probe in ("startupProbe", "readinessProbe"):
            assert c[probe]["grpc"] == {"port": 50051, "service": want}, (d["metadata"]["name"], probe)
        # Liveness asks for the process alone: a dependency outage must not restart pods.
        assert c["livenessProbe"]["grpc"] == {"port": 50051, "service": "process"}, d["metadata"]["name"]


@ALL_RENDERS
def test_services_expose_grpc_and_metrics(ci_file: str) -> None:
    objs = ci(ci_file)
    deployments = by_name(objs, "Deployment")
    services = by_name(objs, "Service")
    assert set(services) == set(deployments)
    for name, svc in services.items():
        ports = {p["name"]: p["port"] for p in svc["spec"]["ports"]}
        assert ports == {"grpc": 50051, "metrics": 9464}, name
        pod_labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert all(pod_labels[k] == v for k, v in svc["spec"]["selector"].items())
        container_ports = {p["name"]: p["containerPort"] for p in deployments[name]["spec"]["template"]["spec"]["containers"][0]["ports"]}
        assert container_ports == ports


@ALL_RENDERS
def test_shutdown_fits_in_the_grace_period(ci_file: str) -> None:
    objs = ci(ci_file)
    config = of_kind(objs, "ConfigMap")[0]["data"]
    delay_s = -(-int(config["W4L_SHUTDOWN_DELAY_MS"]) // 1000)
    grace_s = int(config["W4L_SHUTDOWN_GRACE_SECS"])
    for d in of_kind(objs, "Deployment"):
        spec = d["spec"]["template"]["spec"]
        sleep = spec["containers"][0].get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        assert spec["terminationGracePeriodSeconds"] > sleep + delay_s + grace_s


# ---- PodDisruptionBudget ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "override, expected",
    [
        ({}, set(SERVICES)),
        ({"deploymentMode": "allInOne"}, set()),
        ({"deploymentMode": "allInOne", "allInOne": {"replicas": 3}}, {"all"}),
        ({"deploymentMode": "allInOne", "allInOne": {"replicas": 1, "autoscaling": {"enabled": True, "minReplicas": 2}}}, {"all"}),
        ({"deploymentMode": "allInOne", "allInOne": {"replicas": 3, "autoscaling": {"enabled": True, "minReplicas": 1}}}, set()),
        ({"services": {"grants": {"replicas": 1}, "coaching": {"podDisruptionBudget": {"enabled": False}}}}, set(SERVICES) - {"grants", "coaching"}),
    ],
)
def test_pdb_only_when_it_can_allow_a_disruption(override: dict[str, Any], expected: set[str]) -> None:
    objs = render(values(override))
    pdbs = of_kind(objs, "PodDisruptionBudget")
    assert {component(p) for p in pdbs} == expected
    deployments = {component(d): d for d in of_kind(objs, "Deployment")}
    for pdb in pdbs:
        pod_labels = deployments[component(pdb)]["spec"]["template"]["metadata"]["labels"]
        assert selects(pdb["spec"]["selector"], pod_labels)
        assert pdb["spec"]["maxUnavailable"] == 1


def test_pdb_follows_hpa_min_replicas() -> None:
    pdbs = {component(p) for p in of_kind(ci("microservices-autoscaling-values.yaml"), "PodDisruptionBudget")}
    assert pdbs == set(SERVICES) - {"coaching"}  # coaching's HPA may go down to 1 replica


# ---- HPA --------------------------------------------------------------------------------------


def test_hpa_owns_replicas_when_enabled() -> None:
    objs = ci("microservices-autoscaling-values.yaml")
    hpas = {component(h): h for h in of_kind(objs, "HorizontalPodAutoscaler")}
    assert set(hpas) == set(SERVICES)
    for d in of_kind(objs, "Deployment"):
        hpa = hpas[component(d)]
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": d["metadata"]["name"]}
        assert "replicas" not in d["spec"]
    assert {m["resource"]["name"] for m in hpas["intake"]["spec"]["metrics"]} == {"cpu", "memory"}
    assert hpas["intake"]["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert not of_kind(ci("default-values.yaml"), "HorizontalPodAutoscaler")


# ---- NetworkPolicies --------------------------------------------------------------------------


def policy_for(objs: list[dict[str, Any]], pod_labels: dict[str, str]) -> list[dict[str, Any]]:
    return [p for p in of_kind(objs, "NetworkPolicy") if selects(p["spec"]["podSelector"], pod_labels)]


@ALL_RENDERS
def test_default_deny_and_one_policy_per_workload(ci_file: str) -> None:
    objs = ci(ci_file)
    if not chart.load_values([chart.CI_VALUES / ci_file]).get("networkPolicy", {}).get("enabled", True):
        assert not of_kind(objs, "NetworkPolicy")
        return
    deny = [p for p in of_kind(objs, "NetworkPolicy") if p["metadata"]["name"].endswith("-default-deny")]
    assert len(deny) == 1
    assert deny[0]["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny[0]["spec"] and "egress" not in deny[0]["spec"]
    for workload, template in pod_templates(objs):
        labels = template["metadata"]["labels"]
        policies = policy_for(objs, labels)
        assert deny[0] in policies, f"default deny misses {chart.kind_name(workload)}"
        own = [p for p in policies if p is not deny[0]]
        assert len(own) == 1, f"{chart.kind_name(workload)}: {[p['metadata']['name'] for p in own]}"
        egress_ports = {(port["port"], port["protocol"]) for rule in own[0]["spec"]["egress"] for port in rule["ports"]}
        assert {(53, "UDP"), (53, "TCP"), (5432, "TCP")} <= egress_ports


def grpc_callers(policy: dict[str, Any]) -> set[str]:
    """Who a policy lets in on gRPC: `gateway` or the callers' component names."""
    found = set()
    for rule in policy["spec"]["ingress"]:
        if {p["port"] for p in rule["ports"]} != {50051}:
            continue
        for peer in rule["from"]:
            labels = peer["podSelector"].get("matchLabels", {})
            found.add(labels.get("app.kubernetes.io/component", "gateway"))
    return found


def grpc_callees(policy: dict[str, Any]) -> set[str]:
    found = set()
    for rule in policy["spec"]["egress"]:
        if {p["port"] for p in rule["ports"]} == {50051}:
            found |= {peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for peer in rule["to"]}
    return found


def test_network_policies_encode_the_call_graph() -> None:
    objs = render(values())
    policies = by_name(objs, "NetworkPolicy")
    deployments = {component(d): d for d in of_kind(objs, "Deployment")}
    for service in SERVICES:
        policy = policies[f"work4life-{service}"]
        assert grpc_callers(policy) == GRAPH[service], service
        callees = {callee for callee, callers in GRAPH.items() if service in callers}
        assert grpc_callees(policy) == callees, service
        env = env_of(deployments[service]["spec"]["template"]["spec"]["containers"][0])
        urls = {name for name in env if name.endswith("_URL") and not name.endswith("DATABASE_URL") and name not in ("W4L_REDIS_URL", "W4L_SMTP_URL")}
        assert urls == {f"W4L_{c.upper()}_URL" for c in callees}, service
        for c in callees:
            assert env[f"W4L_{c.upper()}_URL"]["value"] == f"http://work4life-{c}:50051"
    gateway = policies["work4life-identity"]["spec"]["ingress"][0]["from"][0]
    assert gateway == {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "work4life-gateway"}}}


def test_the_call_graph_is_a_value() -> None:
    objs = render(values({"networkPolicy": {"allowedCallers": {"coaching": ["gateway", "grants"], "notifications": ["coaching"]}}}))
    policies = by_name(objs, "NetworkPolicy")
    assert grpc_callers(policies["work4life-coaching"]) == {"gateway", "grants"}
    assert grpc_callers(policies["work4life-notifications"]) == {"coaching"}
    no_callers = render(values({"networkPolicy": {"allowedCallers": {"notifications": []}}}))
    assert by_name(no_callers, "NetworkPolicy")["work4life-notifications"]["spec"]["ingress"] == []
    assert "coaching" in grpc_callees(policies["work4life-grants"])
    grants = by_name(objs, "Deployment")["work4life-grants"]["spec"]["template"]["spec"]["containers"][0]
    assert env_of(grants)["W4L_COACHING_URL"]["value"] == "http://work4life-coaching:50051"


def test_gateway_from_another_namespace_and_metrics_scrapers() -> None:
    objs = ci("microservices-autoscaling-values.yaml")
    peer = by_name(objs, "NetworkPolicy")["work4life-grants"]["spec"]["ingress"][0]["from"][0]
    assert peer == {
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "envoy-gateway"}},
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "edge"}},
    }
    aio = by_name(ci("allinone-values.yaml"), "NetworkPolicy")["work4life"]
    assert grpc_callers(aio) == {"gateway"}  # peers are in the same process
    assert grpc_callees(aio) == set()
    metrics = [r for r in aio["spec"]["ingress"] if {p["port"] for p in r["ports"]} == {9464}]
    assert metrics and metrics[0]["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    assert any({p["port"] for p in r["ports"]} == {4317} for r in aio["spec"]["egress"])  # OTLP


# ---- migrations -------------------------------------------------------------------------------


def hook(obj: dict[str, Any]) -> tuple[set[str], int, set[str]]:
    a = obj["metadata"].get("annotations", {})
    events = set(a.get("helm.sh/hook", "").split(",")) - {""}
    return events, int(a.get("helm.sh/hook-weight", "0")), set(a.get("helm.sh/hook-delete-policy", "").split(",")) - {""}


@pytest.mark.parametrize(
    "ci_file, targets",
    [("allinone-values.yaml", ["all"]), ("default-values.yaml", SERVICES), ("existing-secrets-values.yaml", SERVICES)],
)
def test_migrations_are_pre_install_and_pre_upgrade_hooks(ci_file: str, targets: list[str]) -> None:
    objs = ci(ci_file)
    jobs = of_kind(objs, "Job")
    assert [j["spec"]["template"]["spec"]["containers"][0]["args"] for j in jobs] == [[f"--target={t}", "migrate"] for t in targets]
    names = {chart.kind_name(o) for o in objs}
    for job in jobs:
        events, weight, delete = hook(job)
        assert events == {"pre-install", "pre-upgrade"}
        assert "before-hook-creation" in delete
        spec = job["spec"]["template"]["spec"]
        assert spec["restartPolicy"] == "Never"
        c = spec["containers"][0]
        # Hooks run before the release's ConfigMap and Secret exist: the Job needs neither.
        assert "envFrom" not in c
        refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in c["env"] if "valueFrom" in e}
        assert len(refs) == 1
        existing = chart.load_values([chart.CI_VALUES / ci_file]).get("secrets", {}).get("existingSecret")
        if existing:
            assert refs == {existing}
        else:
            secret = by_name(objs, "Secret")[refs.pop()]
            assert hook(secret)[0] == {"pre-install", "pre-upgrade"} and hook(secret)[1] < weight
            assert set(secret["data"]) == {"W4L_DATABASE_URL"}  # the database URLs only
        sa = spec["serviceAccountName"]
        if f"ServiceAccount/{sa}" in names:
            assert hook(by_name(objs, "ServiceAccount")[sa])[1] < weight
        target = c["args"][0].removeprefix("--target=")
        db_vars = {e["name"] for e in c["env"] if e["name"].endswith("DATABASE_URL")}
        hosted = SERVICES if target == "all" else [target]
        assert db_vars == {"W4L_DATABASE_URL"} | {f"W4L_{s.upper()}_DATABASE_URL" for s in hosted}
    migrate_policy = [p for p in of_kind(objs, "NetworkPolicy") if p["metadata"]["name"] == "work4life-migrate"]
    assert len(migrate_policy) == 1 and hook(migrate_policy[0])[0] == {"pre-install", "pre-upgrade"}


def test_migrations_can_be_turned_off() -> None:
    objs = render(values({"migrations": {"enabled": False}}))
    assert not of_kind(objs, "Job")
    assert not [o for o in objs if "helm.sh/hook" in o["metadata"].get("annotations", {})]


# ---- secrets ----------------------------------------------------------------------------------


def secret_refs(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for _, template in pod_templates(objs):
        for c in template["spec"]["containers"]:
            out += [e["valueFrom"]["secretKeyRef"] for e in c.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})]
            out += [s["secretRef"] for s in c.get("envFrom", []) if "secretRef" in s]
    return out


def test_existing_secret_replaces_the_charts_secret() -> None:
    objs = ci("existing-secrets-values.yaml")
    assert not of_kind(objs, "Secret")
    refs = secret_refs(objs)
    assert refs and {r["name"] for r in refs} == {"work4life-prod"}
    for d in of_kind(objs, "Deployment"):
        assert "checksum/secrets" not in d["spec"]["template"]["metadata"]["annotations"]
        assert d["spec"]["template"]["spec"]["serviceAccountName"] == "work4life"
    assert not of_kind(objs, "ServiceAccount")


def test_charts_secret_holds_every_required_key() -> None:
    objs = ci("allinone-values.yaml")
    secret = by_name(objs, "Secret")["work4life-secrets"]
    for ref in secret_refs([o for o in objs if o["kind"] == "Deployment"]):
        assert ref["name"] == "work4life-secrets"
        if not ref.get("optional"):
            assert ref["key"] in secret["data"], ref
    assert {
        "W4L_PAGE_TOKEN_KEY", "W4L_REDIS_URL", "W4L_DATABASE_URL", "W4L_SIGNING_KEY_ENCRYPTION_KEY", "W4L_PERSONAL_DATA_KEYS",
        "W4L_PERSONAL_DATA_HASH_KEY", "W4L_SERVICE_CLIENT_ID", "W4L_SERVICE_CLIENT_SECRET", "W4L_SMS_TOKEN", "W4L_WHATSAPP_TOKEN", "W4L_SMTP_URL",
    } <= set(secret["data"])  # fmt: skip
    assert "W4L_FIELD_ENCRYPTION_KEY" not in secret["data"]
    assert "W4L_SMS_API_KEY" not in secret["data"]  # the placeholder, replaced by W4L_SMS_TOKEN
    # The all-in-one pod hosts intake: its personal-data keys are required, not optional.
    (aio,) = of_kind(objs, "Deployment")
    refs = {e["valueFrom"]["secretKeyRef"]["key"]: e["valueFrom"]["secretKeyRef"] for e in aio["spec"]["template"]["spec"]["containers"][0]["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    for key in ("W4L_PERSONAL_DATA_KEYS", "W4L_PERSONAL_DATA_HASH_KEY", "W4L_SIGNING_KEY_ENCRYPTION_KEY", "W4L_SERVICE_CLIENT_ID", "W4L_SERVICE_CLIENT_SECRET"):
        assert not refs[key].get("optional", False), key


def test_each_service_gets_only_its_own_secrets() -> None:
    objs = ci("microservices-autoscaling-values.yaml")
    specific = {
        "identity": {"W4L_SIGNING_KEY_ENCRYPTION_KEY"} | SERVICE_ACCOUNT_KEYS,
        "intake": {"W4L_PERSONAL_DATA_KEYS", "W4L_PERSONAL_DATA_HASH_KEY"},
        "notifications": {"W4L_SMS_TOKEN", "W4L_WHATSAPP_TOKEN", "W4L_SMTP_URL"} | SERVICE_ACCOUNT_KEYS,
    }
    # Without these the binary would fall back to its development keys or local Redis, or
    # notifications could not read contact details: a pod must not start without them.
    required = {"W4L_REDIS_URL", "W4L_PAGE_TOKEN_KEY", "W4L_SIGNING_KEY_ENCRYPTION_KEY", "W4L_PERSONAL_DATA_KEYS", "W4L_PERSONAL_DATA_HASH_KEY"} | SERVICE_ACCOUNT_KEYS
    for d in of_kind(objs, "Deployment"):
        service = component(d)
        refs = {e["valueFrom"]["secretKeyRef"]["key"]: e["valueFrom"]["secretKeyRef"] for e in d["spec"]["template"]["spec"]["containers"][0]["env"] if "secretKeyRef" in e.get("valueFrom", {})}
        want = {"W4L_DATABASE_URL", f"W4L_{service.upper()}_DATABASE_URL", "W4L_REDIS_URL", "W4L_PAGE_TOKEN_KEY"} | specific.get(service, set())
        assert set(refs) == want, service
        for key, ref in refs.items():
            assert ref.get("optional", False) is (key not in required), (service, key)


@pytest.mark.parametrize(
    "override, message",
    [
        ({"secrets": {"pageTokenKey": ""}}, "secrets.pageTokenKey is required"),
        ({"secrets": {"redisUrl": ""}}, "secrets.redisUrl is required"),
        ({"secrets": {"signingKeyEncryptionKey": ""}}, "secrets.signingKeyEncryptionKey is required"),
        ({"secrets": {"signingKeyEncryptionKey": "c2hvcnQ="}}, "signingKeyEncryptionKey"),
        ({"secrets": {"personalDataKeys": "2026a:c2hvcnQ="}}, "personalDataKeys"),  # not 32 bytes
        ({"secrets": {"personalDataKeys": "Y2ktb25seS1wZXJzb25hbC1kYXRhLWtleS0yMDI2YSE="}}, "personalDataKeys"),  # no id
        ({"secrets": {"personalDataKeys": "K1:Y2ktb25seS1wZXJzb25hbC1kYXRhLWtleS0yMDI2YSE="}}, "personalDataKeys"),  # upper-case id
        ({"secrets": {"personalDataKeys": "2026a:Y2ktb25seS1wZXJzb25hbC1kYXRhLWtleS0yMDI2YSE=,"}}, "personalDataKeys"),
        ({"secrets": {"personalDataHashKey": "c2hvcnQ="}}, "personalDataHashKey"),
        ({"networkPolicy": {"allowedCallers": {"identity": ["gateway", "notifications"]}}}, "allowedCallers.identity must list intake"),
        ({"secrets": {"databaseUrl": "", "databaseUrls": {"identity": "postgres://x@db/identity"}}}, "secrets.databaseUrls.intake"),
        ({"shutdown": {"terminationGracePeriodSeconds": 25}}, "terminationGracePeriodSeconds (25) must be above"),
        ({"metrics": {"enabled": False, "serviceMonitor": {"enabled": True}}}, "metrics.serviceMonitor.enabled needs metrics.enabled"),
        ({"secrets": {"pageTokenKey": "c2hvcnQ="}}, "pageTokenKey"),
        ({"secrets": {"redisUrl": "rediss://cache:6380"}}, "redisUrl"),
        ({"otel": {"endpoint": "https://collector:4317"}}, "endpoint"),
        ({"deploymentMode": "split"}, "deploymentMode"),
        ({"services": {"billing": {"replicas": 2}}}, "billing"),
        ({"secrets": {"serviceClientSecret": ""}}, "secrets.serviceClientSecret is required"),
        ({"secrets": {"serviceClientId": ""}}, "secrets.serviceClientId is required"),
        ({"secrets": {"serviceClientId": "work4life-services"}}, "serviceClientId"),  # not a UUID
        ({"secrets": {"serviceClientSecret": "too-short-for-a-service-secret"}}, "serviceClientSecret"),  # under 32 characters
        ({"secrets": {"smsApiKey": "k"}}, "smsApiKey"),  # the placeholder is gone: secrets.smsToken
        ({"secrets": {"smtpUrl": "mail.example.org:587"}}, "smtpUrl"),
        ({"config": {"notifications": {"smsUrl": "ftp://sms.example.org"}}}, "smsUrl"),
        ({"config": {"notifications": {"whatsappUrl": "whatsapp.example.org"}}}, "whatsappUrl"),
        ({"config": {"notifications": {"quietHours": "22h-7h"}}}, "quietHours"),
        ({"config": {"notifications": {"quietHours": "21:00-24:00"}}}, "quietHours"),  # the binary refuses hour 24
        ({"config": {"notifications": {"quietHours": True}}}, "quietHours"),
        ({"config": {"notifications": {"emailFrom": "nobody"}}}, "emailFrom"),
        ({"config": {"notifications": {"smsRate": 0}}}, "smsRate"),
        ({"config": {"notifications": {"maxAttempts": 101}}}, "maxAttempts"),
        ({"config": {"notifications": {"retries": 3}}}, "retries"),
        ({"networkPolicy": {"providers": {"ports": []}}}, "providers"),
    ],
)
def test_bad_values_are_refused_with_a_clear_message(override: dict[str, Any], message: str) -> None:
    with pytest.raises(Exception) as err:
        chart.render(values(override))
    assert message in str(err.value)


@pytest.mark.parametrize("mode", ["microservices", "allInOne"])
@pytest.mark.parametrize("key", ["personalDataKeys", "personalDataHashKey"])
def test_intake_needs_its_personal_data_keys(mode: str, key: str) -> None:
    # intake runs in both modes (the chart has no way to leave a service out), and without these
    # keys it would encrypt and hash personal data with its built-in development keys.
    with pytest.raises(Exception) as err:
        chart.render(values({"deploymentMode": mode, "secrets": {key: ""}}))
    assert f"secrets.{key} is required" in str(err.value)
    without = copy.deepcopy(SECRETS)
    del without["secrets"][key]
    with pytest.raises(Exception) as err:
        chart.render(values({"deploymentMode": mode}, base=without))
    assert f"secrets.{key} is required" in str(err.value)


@pytest.mark.parametrize("mode", ["microservices", "allInOne"])
@pytest.mark.parametrize("key", ["serviceClientId", "serviceClientSecret"])
def test_identity_and_notifications_need_the_service_account(mode: str, key: str) -> None:
    # Identity and notifications run in both modes; without the account notifications cannot
    # read contact details from intake, and every message would wait.
    how = {"serviceClientId": "uuidgen", "serviceClientSecret": "openssl rand -base64 48"}[key]
    without = copy.deepcopy(SECRETS)
    del without["secrets"][key]
    for v in (values({"deploymentMode": mode, "secrets": {key: ""}}), values({"deploymentMode": mode}, base=without)):
        with pytest.raises(Exception) as err:
            chart.render(v)
        assert f"secrets.{key} is required" in str(err.value) and how in str(err.value)
        assert "secrets.existingSecret" in str(err.value)
    # With a Secret managed elsewhere the chart cannot check: the pods require the keys instead.
    assert render(values({"deploymentMode": mode, "secrets": {"existingSecret": "mine", key: ""}}))


@pytest.mark.parametrize("ci_file", ["default-values.yaml", "allinone-values.yaml", "existing-secrets-values.yaml"])
def test_service_account_keys_reach_identity_and_notifications_only(ci_file: str) -> None:
    objs = ci(ci_file)
    for d in of_kind(objs, "Deployment"):
        env = d["spec"]["template"]["spec"]["containers"][0]["env"]
        names = [e["name"] for e in env]
        assert len(names) == len(set(names)), f"{d['metadata']['name']}: a variable twice"
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in env if "secretKeyRef" in e.get("valueFrom", {})}
        hosted = SERVICES if component(d) == "all" else [component(d)]
        if {"identity", "notifications"} & set(hosted):
            for key in SERVICE_ACCOUNT_KEYS:
                assert refs[key]["key"] == key and not refs[key].get("optional", False), (d["metadata"]["name"], key)
        else:
            assert not SERVICE_ACCOUNT_KEYS & set(refs), d["metadata"]["name"]
        provider_keys = {"W4L_SMS_TOKEN", "W4L_WHATSAPP_TOKEN", "W4L_SMTP_URL"}
        if "notifications" in hosted:
            assert all(refs[k].get("optional") is True for k in provider_keys)
        else:
            assert not provider_keys & set(refs), d["metadata"]["name"]
    for job in of_kind(objs, "Job"):  # migrations need the database URLs alone
        assert not SERVICE_ACCOUNT_KEYS & set(env_of(job["spec"]["template"]["spec"]["containers"][0]))
    for secret in of_kind(objs, "Secret"):
        if secret["metadata"]["name"] == "work4life-secrets":
            data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
            assert data["W4L_SERVICE_CLIENT_ID"] == SECRETS["secrets"]["serviceClientId"]
            assert data["W4L_SERVICE_CLIENT_SECRET"] == SECRETS["secrets"]["serviceClientSecret"]
        else:
            assert not SERVICE_ACCOUNT_KEYS & set(secret.get("data", {})), secret["metadata"]["name"]


def test_personal_data_keys_list_several_keys() -> None:
    keys = "2026a:Y2ktb25seS1wZXJzb25hbC1kYXRhLWtleS0yMDI2YSE=,2025-b_old:Y2ktb25seS1wZXJzb25hbC1kYXRhLWtleS0yMDI1YiE="
    secret = by_name(render(values({"secrets": {"personalDataKeys": keys}})), "Secret")["work4life-secrets"]
    assert base64.b64decode(secret["data"]["W4L_PERSONAL_DATA_KEYS"]).decode() == keys


def test_chart_defaults_alone_ask_for_the_secrets() -> None:
    with pytest.raises(Exception) as err:
        chart.render({})
    assert "secrets." in str(err.value) and "existingSecret" in str(err.value)


# ---- image, configuration, monitoring ---------------------------------------------------------


def images(objs: list[dict[str, Any]]) -> set[str]:
    return {c["image"] for _, t in pod_templates(objs) for c in t["spec"]["containers"]}


def test_image_tag_defaults_to_app_version() -> None:
    assert images(render(values())) == {f"work4life:{APP_VERSION}"}
    assert images(render(values({"image": {"tag": "0.2.0-rc.1"}}))) == {"work4life:0.2.0-rc.1"}
    digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    assert images(ci("existing-secrets-values.yaml")) == {f"registry.example.org/work4life/work4life@{digest}"}
    for obj in render(values()):
        assert obj["metadata"]["labels"]["app.kubernetes.io/version"] == APP_VERSION


def test_configmap_sets_only_known_variables() -> None:
    known = {
        "W4L_LISTEN_ADDR", "W4L_METRICS_ADDR", "W4L_LOG", "W4L_LOG_FORMAT", "W4L_MAX_CONCURRENT_CALLS",
        "W4L_DEFAULT_DEADLINE_MS", "W4L_DATABASE_MAX_CONNECTIONS", "W4L_SHUTDOWN_DELAY_MS",
        "W4L_SHUTDOWN_GRACE_SECS", "W4L_TOKEN_ISSUER", "W4L_TOKEN_AUDIENCE", "W4L_TOKEN_LEEWAY_SECS",
        "OTEL_EXPORTER_OTLP_ENDPOINT", *NOTIFICATION_DEFAULTS, "W4L_SMS_URL", "W4L_WHATSAPP_URL",
    }  # fmt: skip
    data = of_kind(ci("allinone-values.yaml"), "ConfigMap")[0]["data"]
    assert set(data) == known
    assert data["W4L_LISTEN_ADDR"] == "0.0.0.0:50051" and data["W4L_METRICS_ADDR"] == "0.0.0.0:9464"
    assert data["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability:4317"
    assert all(isinstance(v, str) for v in data.values())
    off = of_kind(render(values({"metrics": {"enabled": False}})), "ConfigMap")[0]["data"]
    assert "W4L_METRICS_ADDR" not in off and "OTEL_EXPORTER_OTLP_ENDPOINT" not in off


# What the ConfigMap says for notifications with the chart's defaults: the binary's own defaults
# (services/notifications/src/settings.rs).
NOTIFICATION_DEFAULTS = {
    "W4L_SMS_SENDER": "WORK4LIFE",
    "W4L_SMS_RATE": "20",
    "W4L_WHATSAPP_SENDER": "WORK4LIFE",
    "W4L_WHATSAPP_RATE": "20",
    "W4L_SMTP_RATE": "10",
    "W4L_EMAIL_FROM": "WORK4LIFE <no-reply@work4life.local>",
    "W4L_NOTIFY_QUIET_HOURS": "21:00-08:00",
    "W4L_NOTIFY_DEFAULT_LOCALE": "fr",
    "W4L_NOTIFY_TIME_ZONE": "Africa/Casablanca",
    "W4L_NOTIFY_MAX_ATTEMPTS": "12",
    "W4L_NOTIFY_RETRY_BASE_MS": "2000",
    "W4L_NOTIFY_RETRY_CAP_MS": "600000",
    "W4L_NOTIFY_BATCH": "200",
    "W4L_NOTIFY_CONCURRENCY": "64",
    "W4L_NOTIFY_PROVIDER_TIMEOUT_MS": "10000",
}


def test_configmap_carries_the_notification_settings() -> None:
    data = of_kind(render(values()), "ConfigMap")[0]["data"]
    assert {k: data[k] for k in NOTIFICATION_DEFAULTS} == NOTIFICATION_DEFAULTS
    # No provider URL: SMS and WhatsApp are off (the service logs it), not pointed at "".
    assert "W4L_SMS_URL" not in data and "W4L_WHATSAPP_URL" not in data
    aio = of_kind(ci("allinone-values.yaml"), "ConfigMap")[0]["data"]
    assert aio["W4L_SMS_URL"] == "https://sms.example.org/v1" and aio["W4L_WHATSAPP_URL"] == "https://whatsapp.example.org/v2"
    assert aio["W4L_SMS_SENDER"] == "+212600000000" and aio["W4L_SMS_RATE"] == "50"
    assert aio["W4L_EMAIL_FROM"] == "Programme WORK4LIFE <contact@work4life.example.org>"
    assert aio["W4L_NOTIFY_QUIET_HOURS"] == "off" and aio["W4L_NOTIFY_DEFAULT_LOCALE"] == "ar" and aio["W4L_NOTIFY_MAX_ATTEMPTS"] == "8"
    # An unquoted `off` in a values file arrives as false, and still means off.
    off = of_kind(render(values({"config": {"notifications": {"quietHours": False}}})), "ConfigMap")[0]["data"]
    assert off["W4L_NOTIFY_QUIET_HOURS"] == "off"
    night = of_kind(render(values({"config": {"notifications": {"quietHours": "22:30-06:45", "providerTimeoutMs": 5000}}})), "ConfigMap")[0]["data"]
    assert night["W4L_NOTIFY_QUIET_HOURS"] == "22:30-06:45" and night["W4L_NOTIFY_PROVIDER_TIMEOUT_MS"] == "5000"
    # Every pod reads the ConfigMap, so the settings reach the notifications pods.
    for d in of_kind(ci("default-values.yaml"), "Deployment"):
        assert {"configMapRef": {"name": "work4life-config"}} in d["spec"]["template"]["spec"]["containers"][0]["envFrom"]


def provider_rules(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in policy["spec"].get("egress", []) if {p["port"] for p in r["ports"]} & PROVIDER_PORTS]


def test_provider_egress_for_notifications_only() -> None:
    policies = by_name(render(values()), "NetworkPolicy")
    (rule,) = provider_rules(policies["work4life-notifications"])
    assert rule == {"ports": [{"port": p, "protocol": "TCP"} for p in (443, 587, 465, 25)]}  # no `to`: any destination
    for name, policy in policies.items():
        if name != "work4life-notifications":
            assert not provider_rules(policy), name
    aio = by_name(ci("allinone-values.yaml"), "NetworkPolicy")
    assert provider_rules(aio["work4life"]) == [rule]  # the all-in-one pod hosts notifications
    assert not provider_rules(aio["work4life-migrate"])
    # Peers and ports are values, as for PostgreSQL and Redis.
    ms = by_name(ci("microservices-autoscaling-values.yaml"), "NetworkPolicy")
    (rule,) = provider_rules(ms["work4life-notifications"])
    assert rule["ports"] == [{"port": 443, "protocol": "TCP"}, {"port": 587, "protocol": "TCP"}]
    assert rule["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]}}]
    assert not provider_rules(ms["work4life-grants"])
    assert not [p for p in of_kind(render(values({"networkPolicy": {"enabled": False}})), "NetworkPolicy")]


def test_service_monitor_scrapes_every_service() -> None:
    objs = ci("allinone-values.yaml")
    (sm,) = of_kind(objs, "ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "prometheus"
    assert sm["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}]
    for svc in of_kind(objs, "Service"):
        assert selects(sm["spec"]["selector"], svc["metadata"]["labels"])
    micro = render(values({"metrics": {"serviceMonitor": {"enabled": True}}}))
    (sm,) = of_kind(micro, "ServiceMonitor")
    assert sum(selects(sm["spec"]["selector"], s["metadata"]["labels"]) for s in of_kind(micro, "Service")) == 5
    assert not of_kind(render(values()), "ServiceMonitor")


def test_prestop_sleep_only_when_asked() -> None:
    for d in of_kind(ci("microservices-autoscaling-values.yaml"), "Deployment"):
        assert d["spec"]["template"]["spec"]["containers"][0]["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    for d in of_kind(ci("default-values.yaml"), "Deployment"):
        assert "lifecycle" not in d["spec"]["template"]["spec"]["containers"][0]


def test_modes_render_the_expected_workloads() -> None:
    micro = render(values())
    assert sorted(d["metadata"]["name"] for d in of_kind(micro, "Deployment")) == sorted(f"work4life-{s}" for s in SERVICES)
    aio = render(values({"deploymentMode": "allInOne"}))
    assert [d["metadata"]["name"] for d in of_kind(aio, "Deployment")] == ["work4life"]
    env = env_of(of_kind(aio, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0])
    assert not [n for n in env if n.endswith("_URL") and n.removeprefix("W4L_").removesuffix("_URL").lower() in SERVICES]
