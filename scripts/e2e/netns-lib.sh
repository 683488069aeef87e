# Shared by the namespace end-to-end scripts (sourced, POSIX sh): the private-namespace check,
# background processes cleaned up on exit, and polling with the script's own diagnostics.

# netns_setup ADDRESS...: refuses to run outside a private network namespace (only lo), brings lo
# up and gives it ADDRESS... (e.g. 192.0.2.10/32), so the registered addresses are real here.
netns_setup() {
    [ "$(ip -o link show | grep -c -v ' lo:')" = 0 ] || { echo "FAIL: not in a private network namespace"; exit 2; }
    ip link set lo up
    for address in "$@"; do ip addr add "$address" dev lo; done
}

# Background processes to stop on exit: append their pids to PIDS.
PIDS=""
cleanup() { for pid in $PIDS; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# waitfor SECONDS DESCRIPTION COMMAND...: polls every 0.2 s; on time-out prints the script's
# `diagnose` (its own view of the state) and the server log, and exits 1.
waitfor() {
    limit=$1; what=$2; shift 2
    end=$(( $(date +%s) + limit ))
    while [ "$(date +%s)" -le "$end" ]; do
        if "$@" >/dev/null 2>&1; then echo "ok: $what"; return 0; fi
        sleep 0.2
    done
    echo "FAIL: $what (within ${limit}s)"
    diagnose
    echo "--- server log:"; tail -20 "$WORK/server.log" || true
    exit 1
}

# fake_apiserver REPOSITORY: starts the fake API server (Tests/FakeAPIServer) on the namespace's
# loopback with a CA made here, sets KUBE (its URL) and writes $WORK/kubeconfig (context `fake`,
# token `admin-token`).
fake_apiserver() {
    (
        cd "$WORK"
        openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=fake-ca -keyout ca.key -out ca.crt 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1\n' > server.ext
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -extfile server.ext -out server.crt 2>/dev/null
    )
    python3 "$1/Tests/FakeAPIServer/fake_apiserver.py" --cert "$WORK/server.crt" --key "$WORK/server.key" --client-ca "$WORK/ca.crt" \
        --token admin-token=admin >"$WORK/apiserver.out" 2>"$WORK/apiserver.log" &
    PIDS="$PIDS $!"
    waitfor 15 "fake API server up" grep -q '^PORT ' "$WORK/apiserver.out"
    KUBE=https://127.0.0.1:$(sed -n 's/^PORT //p' "$WORK/apiserver.out")
    cat > "$WORK/kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
current-context: fake
clusters:
- name: fake
  cluster: {server: "$KUBE", certificate-authority: "$WORK/ca.crt"}
users:
- name: admin
  user: {token: admin-token}
contexts:
- name: fake
  context: {cluster: fake, user: admin}
KUBECONFIG
}
