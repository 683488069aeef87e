#!/bin/sh
# End-to-end health checks inside a private network namespace, so that the registered
# (documentation) addresses are real and no probe can leave the machine. Run by
# Tests/RegistryAPITests/LivenessNetnsTests.swift as:
#   unshare -n sh liveness-netns.sh BINARY WORKDIR REPOSITORY
# (root); the fake API server (Tests/FakeAPIServer) stands for the bound cluster. Prints one line
# per step; exits non-zero on the first failed expectation.
set -eu
BIN=$1
WORK=$2
REPO=$3
API=http://127.0.0.1:18080
SVC=$API/v1/services/storage/rgw

. "$(dirname "$0")/netns-lib.sh"
netns_setup 192.0.2.10/32 192.0.2.11/32 192.0.2.12/32 2001:db8::10/128

backend() {  # backend IP -> starts an HTTP server on IP:8080, echoes its pid
    python3 -m http.server 8080 --bind "$1" --directory "$WORK" >/dev/null 2>&1 &
    echo $!
}

# What `waitfor` prints when an expectation is not met in time.
diagnose() {
    echo "--- health:"; curl -s "$SVC/health" || true; echo
    echo "--- cluster: $(in_cluster 2>/dev/null || true)"
}

fake_apiserver "$REPO"
# The addresses ready in the fake cluster's EndpointSlices of storage/rgw, sorted and comma-separated.
in_cluster() {
    curl -sf --cacert "$WORK/ca.crt" -H 'Authorization: Bearer admin-token' \
        "$KUBE/apis/discovery.k8s.io/v1/namespaces/storage/endpointslices" | python3 -c '
import json, sys
items = json.load(sys.stdin)["items"]
print(",".join(sorted(a for o in items if o["metadata"]["labels"].get("kubernetes.io/service-name") == "rgw"
    for e in o.get("endpoints") or [] if (e.get("conditions") or {}).get("ready", True) for a in e["addresses"])))'
}
in_cluster_is() { [ "$(in_cluster)" = "$1" ]; }

# The addresses rendered ready in the v1 Endpoints, sorted and comma-separated.
ready() {
    curl -sf "$SVC/manifests?format=json&endpoints=endpoints" | python3 -c '
import json, sys
items = json.load(sys.stdin)["items"]
ips = sorted(a["ip"] for o in items if o["kind"] == "Endpoints" for s in o.get("subsets", []) for a in s.get("addresses", []))
print(",".join(ips))'
}
ready_is() { [ "$(ready)" = "$1" ]; }
health_has() { curl -sf "$SVC/health" | grep -q "$1"; }
states_are() {
    [ "$(curl -sf "$SVC/health" | python3 -c '
import json, sys
print(",".join(a["health"]["state"] for a in json.load(sys.stdin)["addresses"]))')" = "$1" ]
}

A=$(backend 192.0.2.10); PIDS="$PIDS $A"
B=$(backend 192.0.2.11); PIDS="$PIDS $B"
"$BIN" serve --host 127.0.0.1 --port 18080 --database "$WORK/registry.sqlite" --kubeconfig "$WORK/kubeconfig" --log-level info \
    >"$WORK/server.log" 2>&1 &
PIDS="$PIDS $!"
waitfor 30 "server up" curl -sf "$API/healthz"
waitfor 10 "backends up" curl -sf http://192.0.2.11:8080/

curl -sf -X POST "$API/v1/services" -H 'Content-Type: application/json' -d '{
  "namespace": "storage", "name": "rgw", "ports": [{"port": 80, "targetPort": 8080}], "clusters": ["fake"],
  "addresses": [{"ip": "192.0.2.10"}, {"ip": "192.0.2.11"}],
  "healthCheck": {"type": "http", "path": "/", "intervalSeconds": 2, "timeoutSeconds": 1, "healthyThreshold": 1, "unhealthyThreshold": 2}
}' >/dev/null
echo "ok: registered"
ready_is "192.0.2.10,192.0.2.11" || { echo "FAIL: a new registration is not rendered ready"; exit 1; }
echo "ok: unknown addresses rendered ready"
waitfor 15 "the fake cluster has both" in_cluster_is "192.0.2.10,192.0.2.11"
waitfor 15 "both healthy" states_are "healthy,healthy"
[ "$(curl -sf "$SVC" | python3 -c '
import json, sys
print(",".join(a["health"]["state"] for a in json.load(sys.stdin)["addresses"]))')" = "healthy,healthy" ] \
    || { echo "FAIL: the service document does not show each address's health: $(curl -s "$SVC")"; exit 1; }
echo "ok: the service document shows each address's health"

# A tcp check (plain nonblocking connect), IPv4 and IPv6: the address with no listener is refused.
V6=$(backend 2001:db8::10); PIDS="$PIDS $V6"
waitfor 10 "IPv6 backend up" curl -sfg "http://[2001:db8::10]:8080/"
curl -sf -X POST "$API/v1/services" -H 'Content-Type: application/json' -d '{
  "namespace": "storage", "name": "tcp", "ports": [{"port": 8080}],
  "addresses": [{"ip": "192.0.2.10"}, {"ip": "192.0.2.12"}, {"ip": "2001:db8::10"}],
  "healthCheck": {"type": "tcp", "intervalSeconds": 2, "timeoutSeconds": 1, "healthyThreshold": 1, "unhealthyThreshold": 1}
}' >/dev/null
tcp_states() {
    [ "$(curl -sf "$API/v1/services/storage/tcp/health" | python3 -c '
import json, sys
print(",".join(a["health"]["state"] for a in json.load(sys.stdin)["addresses"]))')" = "$1" ]
}
waitfor 15 "tcp check: listeners healthy (IPv4, IPv6), no listener unhealthy" tcp_states "healthy,unhealthy,healthy"
curl -sf -X DELETE "$API/v1/services/storage/tcp" >/dev/null

# Audit lines so far (the health changes below must add none).
audit_lines() { curl -sf "$API/v1/audit?limit=1000" | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["items"]))'; }
audited=$(audit_lines)
kill "$B"; wait "$B" 2>/dev/null || true
start=$(date +%s)
# interval 2 s x unhealthyThreshold 2, plus jitter and slack.
waitfor 15 "dead backend leaves the rendering" ready_is "192.0.2.10"
echo "info: removed after $(( $(date +%s) - start ))s"
# ... and from the bound cluster within one more reconcile.
waitfor 15 "dead backend leaves the fake cluster" in_cluster_is "192.0.2.10"
echo "info: removed from the cluster after $(( $(date +%s) - start ))s"
waitfor 5 "health shows it unhealthy with the reason" health_has '"lastError":"connection refused'
health_has '"to":"unhealthy"' || { echo "FAIL: no health event"; exit 1; }
echo "ok: health event logged"
curl -sf "$API/v1/services/storage/rgw/history" | grep -q '"revision":2' && { echo "FAIL: a health change made a revision"; exit 1; }
echo "ok: no new revision"
[ "$(audit_lines)" = "$audited" ] || { echo "FAIL: a health change wrote an audit line: $(curl -s "$API/v1/audit")"; exit 1; }
echo "ok: no audit line"

B=$(backend 192.0.2.11); PIDS="$PIDS $B"
waitfor 15 "recovered backend comes back" ready_is "192.0.2.10,192.0.2.11"
waitfor 15 "recovered backend comes back in the fake cluster" in_cluster_is "192.0.2.10,192.0.2.11"

kill "$A" "$B"; wait "$A" "$B" 2>/dev/null || true
waitfor 15 "every backend dead: condition allBackendsUnhealthy" health_has '"type":"allBackendsUnhealthy"'
ready_is "192.0.2.10,192.0.2.11" || { echo "FAIL: fail-open does not render every address ready"; exit 1; }
echo "ok: fail-open renders them all"

curl -sf -X PATCH "$SVC" -H 'Content-Type: application/merge-patch+json' -d '{"healthCheck": {"failOpen": false}}' >/dev/null
waitfor 15 "failOpen false renders none" ready_is ""

curl -sf "$API/metrics" | grep -q 'endpoint_registry_health_probe_failures_total{reason="refused"}' || { echo "FAIL: no refused probe metric"; exit 1; }
curl -sf "$API/metrics" | grep -q 'endpoint_registry_health_addresses{namespace="storage",service="rgw",state="unhealthy"} 2' || { echo "FAIL: no address gauge"; curl -s "$API/metrics" | grep health; exit 1; }
echo "ok: metrics"
echo "PASS"
