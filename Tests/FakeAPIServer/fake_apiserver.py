#!/usr/bin/env python3
"""A fake Kubernetes API server for the test suite, strict where the registry depends on it.

HTTPS only, with bearer-token or client-certificate authentication (401/403), server-side apply
(application/apply-patch+yaml, fieldManager required, force, field-manager conflicts as 409),
dryRun=All, fieldValidation=Strict, the API server's validation for Services, Endpoints and
EndpointSlices (422 with causes), the Endpoints deprecation warning, and injectable faults
(status codes, Retry-After, delays, dropped connections) through /_fake/ control routes.
POST /_fake/tokens replaces the bearer tokens: {"token": "user"} or, for a token that expires,
{"token": {"user": "user", "expires": <unix seconds>}} (401 from then on).

Usage: fake_apiserver.py --cert C --key K --client-ca CA [--token T=user ...] [--readonly user ...]
Prints "PORT <n>" on stdout once listening on 127.0.0.1.
"""
import argparse, ipaddress, json, os, re, signal, ssl, sys, threading, time, uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, parse_qs

LOCK = threading.Lock()
STATE = {"objects": {}, "version": 100, "faults": [], "requests": [], "tokens": {}, "readonly": set(), "ip": 10}
DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
ROUTE = re.compile(r"^/(api/v1|apis/discovery\.k8s\.io/v1)/namespaces/([^/]+)/(services|endpoints|endpointslices)(?:/([^/]+))?$")
KINDS = {"services": ("v1", "Service"), "endpoints": ("v1", "Endpoints"), "endpointslices": ("discovery.k8s.io/v1", "EndpointSlice")}
FIELDS = {"Service": {"apiVersion", "kind", "metadata", "spec", "status"}, "Endpoints": {"apiVersion", "kind", "metadata", "subsets"},
          "EndpointSlice": {"apiVersion", "kind", "metadata", "addressType", "endpoints", "ports"}}
VERBS = ["create", "delete", "get", "list", "patch", "update"]
# Enough discovery for kubectl (apply --server-side --validate=false) to find the three kinds.
DISCOVERY = {
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [{"name": "discovery.k8s.io", "versions": [{"groupVersion": "discovery.k8s.io/v1", "version": "v1"}],
              "preferredVersion": {"groupVersion": "discovery.k8s.io/v1", "version": "v1"}}]},
    "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        {"name": "services", "singularName": "service", "namespaced": True, "kind": "Service", "verbs": VERBS, "shortNames": ["svc"]},
        {"name": "endpoints", "singularName": "endpoints", "namespaced": True, "kind": "Endpoints", "verbs": VERBS, "shortNames": ["ep"]}]},
    "/apis/discovery.k8s.io/v1": {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "discovery.k8s.io/v1", "resources": [
        {"name": "endpointslices", "singularName": "endpointslice", "namespaced": True, "kind": "EndpointSlice", "verbs": VERBS}]},
}
DEPRECATION = '299 - "v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"'


def status(code, reason, message, causes=None, kind=None, name=None):
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code}
    if causes is not None or name:
        body["details"] = {"name": name or "", "kind": kind or "", "causes": causes or []}
    return code, body


def bad_ip(ip, family=None):
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "must be a valid IP address"
    if family == "IPv4" and address.version != 4 or family == "IPv6" and address.version != 6:
        return "must be an %s address" % family
    if address.is_unspecified or address.is_loopback or address.is_link_local:
        return "may not be unspecified, loopback or link-local"
    if address.version == 4 and ip.startswith("224.0.0."):
        return "may not be in the link-local multicast range (224.0.0.0/24)"
    if str(address) != ip:
        return "must be in canonical form"
    return None


def validate(kind, obj):
    causes = []
    def cause(field, message, reason="FieldValueInvalid"):
        causes.append({"reason": reason, "message": message, "field": field})
    meta = obj.get("metadata") or {}
    for key, value in (meta.get("labels") or {}).items():
        if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.match(value):
            cause("metadata.labels", "Invalid value: %r: a valid label must be an empty string or consist of alphanumeric characters" % value)
    if kind == "Service":
        if not DNS1035.match(meta.get("name", "")) or len(meta.get("name", "")) > 63:
            cause("metadata.name", "Invalid value: a DNS-1035 label must consist of lower case alphanumeric characters or '-'")
        spec = obj.get("spec") or {}
        stype = spec.get("type", "ClusterIP")
        ports = spec.get("ports") or []
        if stype not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
            cause("spec.type", "Unsupported value: %r" % stype, "FieldValueNotSupported")
        if stype == "ExternalName":
            if not SUBDOMAIN.match((spec.get("externalName") or "").rstrip(".")):
                cause("spec.externalName", "Invalid value: must be a DNS-1123 subdomain")
        elif not ports and spec.get("clusterIP") != "None":
            cause("spec.ports", "Required value", "FieldValueRequired")
        names = set()
        for i, port in enumerate(ports):
            name = port.get("name", "")
            if len(ports) > 1 and not name:
                cause("spec.ports[%d].name" % i, "Required value", "FieldValueRequired")
            if name and (not DNS1123.match(name) or name in names):
                cause("spec.ports[%d].name" % i, "Invalid value: %r" % name)
            names.add(name)
            if not isinstance(port.get("port"), int) or not 1 <= port["port"] <= 65535:
                cause("spec.ports[%d].port" % i, "Invalid value: must be between 1 and 65535, inclusive")
            if port.get("protocol", "TCP") not in ("TCP", "UDP", "SCTP"):
                cause("spec.ports[%d].protocol" % i, "Unsupported value", "FieldValueNotSupported")
    elif kind == "Endpoints":
        for i, subset in enumerate(obj.get("subsets") or []):
            if not subset.get("addresses") and not subset.get("notReadyAddresses"):
                cause("subsets[%d]" % i, "Required value: must specify `addresses` or `notReadyAddresses`", "FieldValueRequired")
            for field in ("addresses", "notReadyAddresses"):
                for j, address in enumerate(subset.get(field) or []):
                    problem = bad_ip(address.get("ip", ""))
                    if problem:
                        cause("subsets[%d].%s[%d].ip" % (i, field, j), "Invalid value: %r: %s" % (address.get("ip"), problem))
            ports = subset.get("ports") or []
            for j, port in enumerate(ports):
                if len(ports) > 1 and not port.get("name"):
                    cause("subsets[%d].ports[%d].name" % (i, j), "Required value", "FieldValueRequired")
                if not isinstance(port.get("port"), int) or not 1 <= port["port"] <= 65535:
                    cause("subsets[%d].ports[%d].port" % (i, j), "Invalid value: must be between 1 and 65535, inclusive")
    else:
        if not SUBDOMAIN.match(meta.get("name", "")):
            cause("metadata.name", "Invalid value: a lowercase RFC 1123 subdomain")
        family = obj.get("addressType")
        if family not in ("IPv4", "IPv6", "FQDN"):
            cause("addressType", "Unsupported value: %r" % family, "FieldValueNotSupported")
        endpoints = obj.get("endpoints") or []
        if len(endpoints) > 1000:
            cause("endpoints", "Too many: %d: must have at most 1000 items" % len(endpoints), "FieldValueTooMany")
        for i, endpoint in enumerate(endpoints):
            addresses = endpoint.get("addresses") or []
            if not 1 <= len(addresses) <= 100:
                cause("endpoints[%d].addresses" % i, "Required value: must contain 1 to 100 addresses", "FieldValueRequired")
            for j, ip in enumerate(addresses):
                problem = bad_ip(ip, family)
                if problem:
                    cause("endpoints[%d].addresses[%d]" % (i, j), "Invalid value: %r: %s" % (ip, problem))
        ports = obj.get("ports") or []
        if len(ports) > 100:
            cause("ports", "Too many: must have at most 100 items", "FieldValueTooMany")
        if len({p.get("name", "") for p in ports}) != len(ports):
            cause("ports", "Duplicate value: port names must be unique", "FieldValueDuplicate")
    return causes


def defaulted(kind, obj, previous):
    obj = json.loads(json.dumps(obj))
    if kind == "Service":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        if spec["type"] != "ExternalName":
            spec.setdefault("sessionAffinity", "None")
            if "clusterIP" not in spec:
                old = ((previous or {}).get("spec") or {}).get("clusterIP")
                if not old:
                    STATE["ip"] += 1
                    old = "10.96.%d.%d" % (STATE["ip"] // 250, STATE["ip"] % 250 + 1)
                spec["clusterIP"] = old
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
    elif kind == "EndpointSlice":
        for port in obj.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("name", "")
    return obj


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def identity(self):
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            # A token maps to a user, or to {"user": u, "expires": unix seconds}: 401 once expired.
            user = STATE["tokens"].get(auth[7:])
            if isinstance(user, dict):
                return user["user"] if time.time() < user.get("expires", float("inf")) else None
            return user
        cert = self.connection.getpeercert()
        if cert:
            for field in cert.get("subject", ()):
                for key, value in field:
                    if key == "commonName":
                        return value
        return None

    def control(self, method, path):
        with LOCK:
            if path == "/_fake/faults" and method == "POST":
                STATE["faults"] = json.loads(self.body() or b"[]")
                return self.reply(200, {"ok": True})
            if path == "/_fake/reset" and method == "POST":
                self.body()
                STATE["objects"].clear(); STATE["faults"] = []; STATE["requests"] = []
                return self.reply(200, {"ok": True})
            if path == "/_fake/tokens" and method == "POST":
                STATE["tokens"] = json.loads(self.body())
                return self.reply(200, {"ok": True})
            if path == "/_fake/objects":
                return self.reply(200, {"items": list(STATE["objects"].values())})
            if path == "/_fake/requests":
                return self.reply(200, {"items": STATE["requests"]})
        return self.reply(404, {})

    def fault(self, method, path):
        with LOCK:
            for fault in STATE["faults"]:
                if fault.get("method", method) == method and re.search(fault.get("path", "."), path) and fault.get("times", 1) > 0:
                    fault["times"] = fault.get("times", 1) - 1
                    return dict(fault)
        return None

    def handle_any(self, method):
        url = urlparse(self.path)
        if url.path.startswith("/_fake/"):
            return self.control(method, url.path)
        with LOCK:
            STATE["requests"].append({"method": method, "path": url.path, "query": url.query})
        fault = self.fault(method, url.path)
        if fault:
            if fault.get("delay"):
                time.sleep(fault["delay"])
            if fault.get("drop"):
                self.close_connection = True
                self.connection.close()
                return
            if fault.get("status"):
                self.body()
                headers = [("Retry-After", str(fault["retryAfter"]))] if "retryAfter" in fault else []
                return self.reply(*status(fault["status"], "TooManyRequests" if fault["status"] == 429 else "InternalError", "injected fault"), headers)
        user = self.identity()
        if user is None:
            self.body()
            return self.reply(*status(401, "Unauthorized", "Unauthorized"))
        if url.path == "/version":
            return self.reply(200, {"major": "1", "minor": "37", "gitVersion": "v1.37.0-fake"})
        if url.path in DISCOVERY:
            return self.reply(200, DISCOVERY[url.path])
        match = ROUTE.match(url.path)
        if not match:
            self.body()
            return self.reply(*status(404, "NotFound", "the server could not find the requested resource"))
        group, namespace, resource, name = match.groups()
        api_version, kind = KINDS[resource]
        query = {key: values[-1] for key, values in parse_qs(url.query, keep_blank_values=True).items()}
        if method != "GET" and user in STATE["readonly"]:
            self.body()
            return self.reply(*status(403, "Forbidden", '%s "%s" is forbidden: User "%s" cannot %s resource "%s"' % (resource, name, user, method.lower(), resource)))
        warnings = [("Warning", DEPRECATION)] if kind == "Endpoints" else []
        key = (resource, namespace, name)
        if "dryRun" in query and query["dryRun"] != "All":
            self.body()
            return self.reply(*status(400, "BadRequest", "dryRun: Unsupported value: %r: supported values: \"All\"" % query["dryRun"]))
        with LOCK:
            if method == "GET" and name:
                obj = STATE["objects"].get(key)
                return self.reply(200, obj, warnings) if obj else self.reply(*status(404, "NotFound", '%s "%s" not found' % (resource, name), kind=resource, name=name))
            if method == "GET":
                selector = query.get("labelSelector", "")
                wanted = dict(part.split("=", 1) for part in selector.split(",") if "=" in part)
                items = [o for (r, ns, _), o in sorted(STATE["objects"].items()) if r == resource and ns == namespace
                         and all((o["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())]
                return self.reply(200, {"kind": kind + "List", "apiVersion": api_version, "metadata": {"resourceVersion": str(STATE["version"])}, "items": items}, warnings)
            if method == "DELETE":
                self.body()
                obj = STATE["objects"].get(key)
                if not obj:
                    return self.reply(*status(404, "NotFound", '%s "%s" not found' % (resource, name), kind=resource, name=name))
                if query.get("dryRun") != "All":
                    del STATE["objects"][key]
                return self.reply(200, {"kind": "Status", "apiVersion": "v1", "status": "Success", "details": {"name": name, "kind": resource}}, warnings)
        if method != "PATCH" or not name:
            self.body()
            return self.reply(*status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource"))
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        raw = self.body()
        if content_type != "application/apply-patch+yaml":
            return self.reply(*status(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted media types include: application/apply-patch+yaml"))
        manager = query.get("fieldManager", "")
        if not manager:
            return self.reply(*status(422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch", [{"reason": "FieldValueRequired", "message": "Required value: is required for apply patch", "field": "fieldManager"}]))
        try:
            obj = json.loads(raw)
        except ValueError as error:
            return self.reply(*status(400, "BadRequest", "error decoding YAML: %s" % error))
        if obj.get("apiVersion") != api_version or obj.get("kind") != kind:
            return self.reply(*status(400, "BadRequest", "the apiVersion and kind of the body do not match the URL"))
        meta = obj.get("metadata") or {}
        if meta.get("name") != name or meta.get("namespace", namespace) != namespace:
            return self.reply(*status(400, "BadRequest", "the name of the object (%s) does not match the name on the URL (%s)" % (meta.get("name"), name)))
        unknown = sorted(set(obj) - FIELDS[kind])
        if unknown and query.get("fieldValidation") == "Strict":
            return self.reply(*status(400, "BadRequest", "strict decoding error: unknown field \"%s\"" % unknown[0]))
        causes = validate(kind, obj)
        if causes:
            message = '%s "%s" is invalid: ' % (kind, name) + ", ".join("%s: %s" % (c["field"], c["message"]) for c in causes)
            return self.reply(*status(422, "Invalid", message, causes, kind, name))
        with LOCK:
            previous = STATE["objects"].get(key)
            if previous is not None:
                owners = {entry["manager"] for entry in previous["metadata"].get("managedFields", [])}
                if owners and manager not in owners and query.get("force") != "true":
                    other = sorted(owners)[0]
                    return self.reply(*status(409, "Conflict", 'Apply failed with 1 conflict: conflict with "%s": .spec' % other,
                                              [{"reason": "FieldManagerConflict", "message": 'conflict with "%s"' % other, "field": ".spec"}], kind, name))
            result = defaulted(kind, obj, previous)
            result["metadata"]["namespace"] = namespace
            content = {k: v for k, v in result.items() if k != "metadata"}
            content["labels"] = result["metadata"].get("labels")
            content["annotations"] = result["metadata"].get("annotations")
            if previous is not None:
                old = {k: v for k, v in previous.items() if k != "metadata"}
                old["labels"] = previous["metadata"].get("labels")
                old["annotations"] = previous["metadata"].get("annotations")
                changed = old != content
                for field in ("uid", "creationTimestamp"):
                    result["metadata"][field] = previous["metadata"][field]
                result["metadata"]["resourceVersion"] = previous["metadata"]["resourceVersion"]
            else:
                changed = True
                result["metadata"]["uid"] = str(uuid.uuid4())
                result["metadata"]["creationTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            if changed:
                STATE["version"] += 1
                result["metadata"]["resourceVersion"] = str(STATE["version"])
            result["metadata"]["managedFields"] = [{"manager": manager, "operation": "Apply", "apiVersion": api_version}]
            if query.get("dryRun") != "All":
                STATE["objects"][key] = result
        return self.reply(201 if previous is None else 200, result, warnings)

    def do_GET(self): self.handle_any("GET")
    def do_POST(self): self.handle_any("POST")
    def do_PUT(self): self.handle_any("PUT")
    def do_PATCH(self): self.handle_any("PATCH")
    def do_DELETE(self): self.handle_any("DELETE")


def main():
    # Exit on SIGTERM even if the parent ignored it.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--client-ca", required=True)
    parser.add_argument("--token", action="append", default=[], help="TOKEN=user")
    parser.add_argument("--readonly", action="append", default=[])
    args = parser.parse_args()
    STATE["tokens"] = dict(item.split("=", 1) for item in args.token)
    STATE["readonly"] = set(args.readonly)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    context.load_verify_locations(args.client_ca)
    context.verify_mode = ssl.CERT_OPTIONAL
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print("PORT %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
