#!/bin/sh
# End-to-end addresses given by DNS name, inside a private network and mount namespace: a tiny
# DNS server (Tests/DNSServer/dns_server.py) answers from a zone file on the namespace's
# loopback, a bind-mounted /etc/resolv.conf points the registry's resolver (c-ares) at it, and
# the fake API server (Tests/FakeAPIServer) stands for the cluster; no query or probe can leave
# the machine. Run by Tests/RegistryAPITests/DNSNetnsTests.swift as:
#   unshare -n -m sh dns-netns.sh BINARY WORKDIR REPOSITORY
# (root). Prints one line per step; exits non-zero on the first failed expectation.
set -eu
BIN=$1
WORK=$2
REPO=$3
API=http://127.0.0.1:18081
SVC=$API/v1/services/default/db
ZONE=$WORK/zone.txt

. "$(dirname "$0")/netns-lib.sh"
netns_setup 192.0.2.20/32 192.0.2.21/32 2001:db8::20/128

# zone LINE...: rewrites the zone file atomically (the server reloads it when it changes).
zone() {
    printf '%s\n' "$@" > "$ZONE.new"
    mv "$ZONE.new" "$ZONE"
}

# What `waitfor` prints when an expectation is not met in time.
diagnose() {
    echo "--- service:"; curl -s "$SVC" || true; echo
    echo "--- rendered: $(rendered)"; echo "--- cluster: $(in_cluster)"
}

# The DNS server and the resolver configuration, visible to this namespace only.
zone "db.registry.test A 1 192.0.2.20" "db.registry.test A 1 127.0.0.1" "db.registry.test AAAA 1 2001:db8::20"
python3 "$REPO/Tests/DNSServer/dns_server.py" --zone "$ZONE" --address 127.0.0.1 --port 53 >"$WORK/dns.log" 2>&1 &
PIDS="$PIDS $!"
printf 'nameserver 127.0.0.1\n' > "$WORK/resolv.conf"
mount --bind "$WORK/resolv.conf" /etc/resolv.conf
waitfor 10 "DNS server up" grep -q READY "$WORK/dns.log"

# The fake API server, with a CA and a kubeconfig made here.
fake_apiserver "$REPO"

# Backends for the health check of the resolved addresses.
python3 -m http.server 8080 --bind 192.0.2.20 --directory "$WORK" >/dev/null 2>&1 &
PIDS="$PIDS $!"
python3 -m http.server 8080 --bind 192.0.2.21 --directory "$WORK" >/dev/null 2>&1 &
PIDS="$PIDS $!"

"$BIN" serve --host 127.0.0.1 --port 18081 --database "$WORK/registry.sqlite" --kubeconfig "$WORK/kubeconfig" --log-level info \
    >"$WORK/server.log" 2>&1 &
PIDS="$PIDS $!"
waitfor 30 "server up" curl -sf "$API/healthz"

# Every IP of the EndpointSlices, sorted and comma-separated: as rendered, and as in the cluster.
ips() {
    python3 -c '
import json, sys
items = json.load(sys.stdin)["items"]
print(",".join(sorted(a for o in items if o.get("kind", "EndpointSlice") == "EndpointSlice" for e in o.get("endpoints") or [] for a in e["addresses"])))'
}
rendered() { curl -sf "$SVC/manifests?format=json&endpoints=endpointslices" | ips; }
in_cluster() { curl -sf --cacert "$WORK/ca.crt" -H 'Authorization: Bearer admin-token' "$KUBE/apis/discovery.k8s.io/v1/namespaces/default/endpointslices" | ips; }
rendered_is() { [ "$(rendered)" = "$1" ]; }
in_cluster_is() { [ "$(in_cluster)" = "$1" ]; }
# field PYTHON-EXPRESSION: evaluates it on the service document `d`.
field() { curl -sf "$SVC" | python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }
field_is() { [ "$(field "$1")" = "$2" ]; }

curl -sf -X POST "$API/v1/services" -H 'Content-Type: application/json' -d '{
  "namespace": "default", "name": "db", "ports": [{"port": 80, "targetPort": 8080}], "clusters": ["fake"],
  "addresses": [{"host": "db.registry.test", "zone": "zone-a"}],
  "dnsRefreshSeconds": 5, "dnsGraceSeconds": 6,
  "healthCheck": {"type": "tcp", "intervalSeconds": 2, "timeoutSeconds": 1, "healthyThreshold": 1, "unhealthyThreshold": 1}
}' >/dev/null
echo "ok: registered a host address"
waitfor 15 "the manifests render its resolved IPs" rendered_is "192.0.2.20,2001:db8::20"
waitfor 15 "the fake cluster follows" in_cluster_is "192.0.2.20,2001:db8::20"
field_is 'd["addresses"][0]["resolution"]["dropped"]["127.0.0.1"]' "the API server refuses a loopback address (127.0.0.0/8)" \
    || { echo "FAIL: the loopback answer is not reported as dropped: $(curl -s "$SVC")"; exit 1; }
echo "ok: a loopback answer is dropped and reported"
field_is 'd["addresses"][0]["resolution"]["ttlSeconds"]' "1" || { echo "FAIL: no TTL: $(curl -s "$SVC")"; exit 1; }
echo "ok: the TTL is shown"
curl -sf "$SVC/manifests?format=json&endpoints=endpointslices" | grep -q '"zone":"zone-a"' || { echo "FAIL: zone not carried over"; exit 1; }
echo "ok: the address's zone is carried over"
waitfor 45 "the health check probes the resolved IPv4" \
    field_is '[h["state"] for h in d["addresses"][0]["resolution"]["health"] if h["ip"] == "192.0.2.20"][0]' "healthy"

# PUT of the GET'd document (with its read-only views) is accepted and changes nothing.
curl -sf "$SVC" > "$WORK/doc.json"
status=$(curl -s -o "$WORK/put.json" -w '%{http_code}' -X PUT "$SVC" -H 'Content-Type: application/json' --data-binary "@$WORK/doc.json")
[ "$status" = 200 ] || { echo "FAIL: PUT of the GET'd document: $status $(cat "$WORK/put.json")"; exit 1; }
field_is 'd["revision"]' "1" || { echo "FAIL: the PUT made a revision"; exit 1; }
echo "ok: PUT of the GET'd document is accepted unchanged"
etag=$(curl -sfI "$SVC" | tr -d '\r' | sed -n 's/^[Ee][Tt][Aa][Gg]: //p')

zone "db.registry.test A 1 192.0.2.21"
start=$(date +%s)
waitfor 15 "the rendering follows a changed zone" rendered_is "192.0.2.21"
echo "info: followed after $(( $(date +%s) - start ))s"
waitfor 15 "the fake cluster follows the changed zone" in_cluster_is "192.0.2.21"
[ "$(curl -sfI "$SVC" | tr -d '\r' | sed -n 's/^[Ee][Tt][Aa][Gg]: //p')" = "$etag" ] || { echo "FAIL: a resolution change changed the ETag"; exit 1; }
echo "ok: the service's ETag and revision stay (a resolution is no revision)"

zone "other.registry.test A 1 192.0.2.99"
waitfor 15 "NXDOMAIN raises DNSNameNotFound within the grace period" \
    field_is '[c["reason"] for c in d["status"]["conditions"] if c["type"] == "DNSNameNotFound"][0]' "WithinGracePeriod"
rendered_is "192.0.2.21" || { echo "FAIL: the last answer is not kept during the grace period: $(rendered)"; exit 1; }
echo "ok: the last answer is kept during the grace period"
waitfor 20 "after the grace period the host renders none" rendered_is ""
field_is '[c["reason"] for c in d["status"]["conditions"] if c["type"] == "DNSNameNotFound"][0]' "GracePeriodExpired" \
    || { echo "FAIL: the condition does not say the grace period expired: $(curl -s "$SVC")"; exit 1; }
echo "ok: the condition says so"
waitfor 15 "the fake cluster follows" in_cluster_is ""

zone "db.registry.test A 1 192.0.2.20"
waitfor 15 "the name comes back" rendered_is "192.0.2.20"
waitfor 5 "the condition clears" field_is 'len(d["status"]["conditions"])' "0"

curl -sf "$API/metrics" | grep -q 'endpoint_registry_dns_resolutions_total{result="notfound"}' || { echo "FAIL: no notfound metric"; exit 1; }
curl -sf "$API/metrics" | grep -q '^endpoint_registry_dns_hosts 1' || { echo "FAIL: no hosts gauge"; curl -s "$API/metrics" | grep dns; exit 1; }
echo "ok: metrics"
echo "PASS"
