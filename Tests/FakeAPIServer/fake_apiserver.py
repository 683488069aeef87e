#!/usr/bin/env python3
"""A fake Kubernetes API server for the test suite, strict where the registry depends on it.

HTTPS only, with bearer-token or client-certificate authentication (401/403), server-side apply
(application/apply-patch+yaml, fieldManager required, force, field-manager conflicts as 409),
JSON merge patch (application/merge-patch+json), create by POST, dryRun=All,
fieldValidation=Strict, the API server's validation for Services, Endpoints and EndpointSlices
(422 with causes), the Endpoints deprecation warning, LIST with equality label selectors, a log
of every request (/_fake/requests), and injectable faults (status codes, Retry-After, delays,
dropped connections, a black hole that accepts and never answers, a raw body such as JSON with
trailing bytes, a body of N bytes with or without Content-Length) through /_fake/ control routes.

It behaves like a real cluster where the registry depends on it, each behaviour after the
Kubernetes code named next to it:
- defaulting on write: `defaulted` (pkg/apis/core/v1/defaults.go SetDefaults_Service,
  SetDefaults_EndpointPort; pkg/apis/discovery/v1/defaults.go SetDefaults_EndpointPort) and
  clusterIP allocation (pkg/registry/core/service/storage);
- `spec.clusterIP` immutable on update (pkg/apis/core/validation ValidateServiceUpdate);
- deleting a Service deletes its Endpoints (pkg/registry/core/service/storage `rs.endpoints.Delete`);
- the endpoints controller (pkg/controller/endpoint/endpoints_controller.go syncService): a
  Service with a selector gets controller-made Endpoints of the same name (no pods here, so no
  addresses), labelled with the Service's labels and endpoints.kubernetes.io/managed-by;
- the EndpointSlice mirroring controller (pkg/controller/endpointslicemirroring: shouldMirror,
  newEndpointSlice): Endpoints whose Service exists without selector and that are not labelled
  endpointslice.kubernetes.io/skip-mirror=true get slices with every label of the Endpoints,
  kubernetes.io/service-name and endpointslice.kubernetes.io/managed-by=
  endpointslicemirroring-controller.k8s.io; otherwise their mirrored slices are deleted.
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
        # SetDefaults_Service: sessionAffinity for every type; internalTrafficPolicy for
        # ClusterIP, NodePort and LoadBalancer.
        spec.setdefault("sessionAffinity", "None")
        if spec["type"] != "ExternalName":
            spec.setdefault("internalTrafficPolicy", "Cluster")
            # A selector another manager set survives an apply that does not mention it.
            old_selector = ((previous or {}).get("spec") or {}).get("selector")
            if old_selector and "selector" not in spec:
                spec["selector"] = old_selector
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
    elif kind == "Endpoints":
        for subset in obj.get("subsets") or []:
            for port in subset.get("ports") or []:
                port.setdefault("protocol", "TCP")
    return obj


def immutable(kind, obj, previous):
    """ValidateServiceUpdate: spec.clusterIP may not change (except to or from ExternalName)."""
    if kind != "Service" or previous is None:
        return None
    old, new = previous.get("spec") or {}, obj.get("spec") or {}
    if "ExternalName" in (old.get("type"), new.get("type")):
        return None
    if "clusterIP" in new and old.get("clusterIP") and new["clusterIP"] != old["clusterIP"]:
        return [{"reason": "FieldValueInvalid", "message": "Invalid value: %r: field is immutable" % new["clusterIP"], "field": "spec.clusterIP"}]
    return None


def changed_paths(obj, previous):
    """Leaf paths (".spec.ports", ".metadata.labels.app") where `obj` sets a value `previous` holds differently."""
    paths = []

    def walk(new, old, path):
        if isinstance(new, dict) and isinstance(old, dict):
            for key, value in new.items():
                if path == "" and key in ("apiVersion", "kind", "status"):
                    continue
                if path == ".metadata" and key not in ("labels", "annotations"):
                    continue
                walk(value, old.get(key), path + "." + key)
        elif new != old:
            paths.append(path)

    walk(obj, previous, "")
    return paths


def applied_fields(obj):
    """managedFields.fieldsV1 of an apply: enough of the field set for metadata labels and annotations."""
    meta = obj.get("metadata") or {}
    fields = {"f:metadata": {}}
    for field in ("labels", "annotations"):
        if meta.get(field):
            fields["f:metadata"]["f:" + field] = {"f:" + key: {} for key in meta[field]}
    return fields


def mirror_name(name, ports, family):
    digest = 0
    for char in json.dumps([ports, family], sort_keys=True):
        digest = (digest * 31 + ord(char)) % 60466176
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    suffix = ""
    for _ in range(5):
        suffix += alphabet[digest % len(alphabet)]
        digest //= len(alphabet)
    return "%s-%s" % (name, suffix)


def run_controllers():
    """The endpoints and mirroring controllers, run to completion after every write (LOCK held)."""
    objects = STATE["objects"]
    services = {(ns, name): o for (r, ns, name), o in objects.items() if r == "services"}
    # Endpoints controller: Services with a selector own their Endpoints.
    for (ns, name), svc in services.items():
        spec = svc.get("spec") or {}
        if spec.get("selector") and spec.get("type") != "ExternalName":
            labels = dict((svc["metadata"].get("labels") or {}))
            labels["endpoints.kubernetes.io/managed-by"] = "endpoint-controller"
            current = objects.get(("endpoints", ns, name))
            if current is None or current["metadata"].get("labels") != labels or current.get("subsets"):
                STATE["version"] += 1
                objects[("endpoints", ns, name)] = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {
                    "name": name, "namespace": ns, "labels": labels, "uid": str(uuid.uuid4()), "resourceVersion": str(STATE["version"]),
                    "managedFields": [{"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1"}]}}
    # Mirroring controller.
    wanted = {}
    for (r, ns, name), ep in list(objects.items()):
        if r != "endpoints":
            continue
        labels = ep["metadata"].get("labels") or {}
        svc = services.get((ns, name))
        if svc is None or (svc.get("spec") or {}).get("selector") or labels.get("endpointslice.kubernetes.io/skip-mirror") == "true" \
                or "control-plane.alpha.kubernetes.io/leader" in (ep["metadata"].get("annotations") or {}):
            continue
        for subset in ep.get("subsets") or []:
            ports = [{"name": p.get("name", ""), "port": p.get("port"), "protocol": p.get("protocol", "TCP")} for p in subset.get("ports") or []]
            for family in ("IPv4", "IPv6"):
                endpoints = []
                for field, ready in (("addresses", True), ("notReadyAddresses", False)):
                    for address in subset.get(field) or []:
                        if (":" in address.get("ip", "")) == (family == "IPv6"):
                            endpoints.append({"addresses": [address["ip"]], "conditions": {"ready": ready}})
                if not endpoints:
                    continue
                slice_labels = dict(labels)
                slice_labels["kubernetes.io/service-name"] = name
                slice_labels["endpointslice.kubernetes.io/managed-by"] = "endpointslicemirroring-controller.k8s.io"
                slice_name = mirror_name(name, ports, family)
                wanted[("endpointslices", ns, slice_name)] = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {
                    "name": slice_name, "namespace": ns, "labels": slice_labels,
                    "ownerReferences": [{"apiVersion": "v1", "kind": "Endpoints", "name": name, "uid": ep["metadata"].get("uid", "")}]},
                    "addressType": family, "endpoints": endpoints, "ports": ports}
    for key, obj in list(objects.items()):
        if key[0] == "endpointslices" and (obj["metadata"].get("labels") or {}).get("endpointslice.kubernetes.io/managed-by") == \
                "endpointslicemirroring-controller.k8s.io" and key not in wanted:
            del objects[key]
    for key, obj in wanted.items():
        current = objects.get(key)
        if current is None or {k: v for k, v in current.items() if k != "metadata"} != {k: v for k, v in obj.items() if k != "metadata"} \
                or current["metadata"].get("labels") != obj["metadata"]["labels"]:
            STATE["version"] += 1
            obj["metadata"]["uid"] = (current or {}).get("metadata", {}).get("uid") or str(uuid.uuid4())
            obj["metadata"]["resourceVersion"] = str(STATE["version"])
            objects[key] = obj


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
            if path == "/_fake/reset-requests" and method == "POST":
                self.body()
                STATE["requests"] = []
                return self.reply(200, {"ok": True})
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
            if fault.get("blackhole"):
                # Accepts the connection and never answers (until the process ends).
                while True:
                    time.sleep(60)
            if fault.get("delay"):
                time.sleep(fault["delay"])
            if fault.get("drop"):
                self.close_connection = True
                self.connection.close()
                return
            if "body" in fault or "bodyBytes" in fault:
                # A raw answer: `body` as given (e.g. JSON with trailing bytes), or `bodyBytes`
                # bytes of JSON padding, sent in pieces (a response too large to hold).
                self.body()
                self.send_response(fault.get("status", 200))
                self.send_header("Content-Type", "application/json")
                if "body" in fault:
                    data = fault["body"].encode()
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                size = fault["bodyBytes"]
                if not fault.get("chunked"):
                    self.send_header("Content-Length", str(size))
                    self.end_headers()
                else:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                head, piece = b'{"kind":"Status","pad":"', b"x" * 65536
                sent = 0
                try:
                    while sent < size:
                        part = (head if sent == 0 else piece)[: size - sent]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part) if fault.get("chunked") else part)
                        sent += len(part)
                    if fault.get("chunked"):
                        self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass
                self.close_connection = True
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
                # Like the real API server, list items carry no kind and apiVersion (the list has them).
                items = [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")}
                         for (r, ns, _), o in sorted(STATE["objects"].items()) if r == resource and ns == namespace
                         and all((o["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())]
                return self.reply(200, {"kind": kind + "List", "apiVersion": api_version, "metadata": {"resourceVersion": str(STATE["version"])}, "items": items}, warnings)
            if method == "DELETE":
                self.body()
                obj = STATE["objects"].get(key)
                if not obj:
                    return self.reply(*status(404, "NotFound", '%s "%s" not found' % (resource, name), kind=resource, name=name))
                if query.get("dryRun") != "All":
                    del STATE["objects"][key]
                    if resource == "services":
                        STATE["objects"].pop(("endpoints", namespace, name), None)
                    run_controllers()
                return self.reply(200, {"kind": "Status", "apiVersion": "v1", "status": "Success", "details": {"name": name, "kind": resource}}, warnings)
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if method == "POST" and not name:
            return self.create(kind, resource, namespace, api_version, query, warnings)
        if method == "PATCH" and name and content_type == "application/merge-patch+json":
            return self.merge_patch(kind, resource, namespace, name, query, warnings)
        if method != "PATCH" or not name:
            self.body()
            return self.reply(*status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource"))
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
            causes = immutable(kind, obj, previous)
            if causes:
                message = '%s "%s" is invalid: ' % (kind, name) + ", ".join("%s: %s" % (c["field"], c["message"]) for c in causes)
                return self.reply(*status(422, "Invalid", message, causes, kind, name))
            if previous is not None:
                # Server-side apply conflicts only where the applier sets a field another manager
                # owns to a different value; equal values become shared ownership
                # (k8s.io/apimachinery pkg/util/managedfields/internal/conflict.go). Fields are
                # compared leaf by leaf, lists (atomic here) as a whole.
                owners = {entry["manager"] for entry in previous["metadata"].get("managedFields", [])} - {manager}
                differing = changed_paths(defaulted(kind, obj, previous), previous)
                if owners and differing and query.get("force") != "true":
                    other = sorted(owners)[0]
                    return self.reply(*status(409, "Conflict", 'Apply failed with %d conflict(s): conflict with "%s": %s' % (len(differing), other, ", ".join(differing)),
                                              [{"reason": "FieldManagerConflict", "message": 'conflict with "%s"' % other, "field": field} for field in differing], kind, name))
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
            kept = [entry for entry in (previous or {}).get("metadata", {}).get("managedFields", []) if entry.get("manager") != manager]
            result["metadata"]["managedFields"] = kept + [{"manager": manager, "operation": "Apply", "apiVersion": api_version,
                                                           "fieldsType": "FieldsV1", "fieldsV1": applied_fields(obj)}]
            if query.get("dryRun") != "All":
                STATE["objects"][key] = result
                run_controllers()
                result = STATE["objects"].get(key, result)
        return self.reply(201 if previous is None else 200, result, warnings)

    def create(self, kind, resource, namespace, api_version, query, warnings):
        """POST to the collection (kubectl's client-side apply creates this way)."""
        try:
            obj = json.loads(self.body())
        except ValueError as error:
            return self.reply(*status(400, "BadRequest", "error decoding: %s" % error))
        name = (obj.get("metadata") or {}).get("name", "")
        causes = validate(kind, obj)
        if causes:
            message = '%s "%s" is invalid: ' % (kind, name) + ", ".join("%s: %s" % (c["field"], c["message"]) for c in causes)
            return self.reply(*status(422, "Invalid", message, causes, kind, name))
        key = (resource, namespace, name)
        with LOCK:
            if key in STATE["objects"]:
                return self.reply(*status(409, "AlreadyExists", '%s "%s" already exists' % (resource, name), kind=resource, name=name))
            result = defaulted(kind, obj, None)
            result.setdefault("apiVersion", api_version)
            result.setdefault("kind", kind)
            result["metadata"]["namespace"] = namespace
            result["metadata"]["uid"] = str(uuid.uuid4())
            STATE["version"] += 1
            result["metadata"]["resourceVersion"] = str(STATE["version"])
            result["metadata"]["managedFields"] = [{"manager": query.get("fieldManager", "kubectl-client-side-apply"), "operation": "Update", "apiVersion": api_version}]
            if query.get("dryRun") != "All":
                STATE["objects"][key] = result
                run_controllers()
        return self.reply(201, result, warnings)

    def merge_patch(self, kind, resource, namespace, name, query, warnings):
        """RFC 7386 JSON merge patch of an existing object."""
        try:
            patch = json.loads(self.body())
        except ValueError as error:
            return self.reply(*status(400, "BadRequest", "error decoding: %s" % error))

        def merge(target, change):
            if not isinstance(change, dict):
                return change
            target = dict(target) if isinstance(target, dict) else {}
            for k, v in change.items():
                if v is None:
                    target.pop(k, None)
                else:
                    target[k] = merge(target.get(k), v)
            return target

        key = (resource, namespace, name)
        with LOCK:
            previous = STATE["objects"].get(key)
            if previous is None:
                return self.reply(*status(404, "NotFound", '%s "%s" not found' % (resource, name), kind=resource, name=name))
            result = merge(previous, patch)
            causes = validate(kind, result) or immutable(kind, result, previous)
            if causes:
                message = '%s "%s" is invalid: ' % (kind, name) + ", ".join("%s: %s" % (c["field"], c["message"]) for c in causes)
                return self.reply(*status(422, "Invalid", message, causes, kind, name))
            if result != previous:
                STATE["version"] += 1
                result["metadata"]["resourceVersion"] = str(STATE["version"])
            if query.get("dryRun") != "All":
                STATE["objects"][key] = result
                run_controllers()
        return self.reply(200, result, warnings)

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
