#!/usr/bin/env python3
"""Drives a running registry through a client generated from openapi.yaml by openapi-python-client.

Run by Tests/RegistryAPITests/GeneratedClientTests.swift, which generates the client package
`registry_client` into a temporary directory (on PYTHONPATH), starts the registry with a tokens
file and a fake cluster, and passes REGISTRY_URL, REGISTRY_TOKEN and REGISTRY_CLUSTER. Every call
uses the client's default headers (no explicit Accept): create, get, list, the manifests (JSON,
the contract's first media type), a push dry run to the cluster, delete, and a read of the
deleted service. Each step asserts the status and the decoded model; any failure raises.
"""
import os
import sys

from registry_client import AuthenticatedClient
from registry_client.api.clusters import push_service
from registry_client.api.manifests import get_service_manifests
from registry_client.api.services import create_service, delete_service, get_service, list_services
from registry_client.models import ExternalService, KubernetesList, Port, Problem, PushReport, PushRequest, ServiceList
from registry_client.models.address import Address
from registry_client.models.push_report_status import PushReportStatus


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def main():
    client = AuthenticatedClient(base_url=os.environ["REGISTRY_URL"], token=os.environ["REGISTRY_TOKEN"], raise_on_unexpected_status=True)
    cluster = os.environ["REGISTRY_CLUSTER"]
    namespace, name = "storage", "object-gateway"
    with client:
        body = ExternalService(
            namespace=namespace,
            name=name,
            description="S3 gateways outside the cluster",
            ports=[Port(name="https", port=443, target_port=8443)],
            addresses=[Address(ip="192.0.2.10"), Address(ip="192.0.2.11", ready=False)],
        )
        created = create_service.sync_detailed(client=client, body=body)
        expect(created.status_code == 201, f"create: {created.status_code} {created.content!r}")
        service = created.parsed
        expect(isinstance(service, ExternalService), f"create: not a service: {service!r}")
        expect((service.namespace, service.name, service.revision) == (namespace, name, 1), f"create: {service.to_dict()}")
        expect(created.headers.get("Location") == f"/v1/services/{namespace}/{name}", f"create: Location {created.headers}")

        read = get_service.sync_detailed(namespace, name, client=client)
        expect(read.status_code == 200 and isinstance(read.parsed, ExternalService), f"get: {read.status_code} {read.content!r}")
        expect(read.parsed.uid == service.uid, f"get: uid {read.parsed.uid} != {service.uid}")
        expect([a.ip for a in read.parsed.addresses] == ["192.0.2.10", "192.0.2.11"], f"get: addresses {read.parsed.to_dict()}")
        expect([p.target_port for p in read.parsed.ports] == [8443], f"get: ports {read.parsed.to_dict()}")

        listed = list_services.sync_detailed(client=client, namespace=namespace)
        expect(listed.status_code == 200 and isinstance(listed.parsed, ServiceList), f"list: {listed.status_code} {listed.content!r}")
        expect([item.name for item in listed.parsed.items] == [name], f"list: {listed.parsed.to_dict()}")

        manifests = get_service_manifests.sync_detailed(namespace, name, client=client)
        expect(manifests.status_code == 200, f"manifests: {manifests.status_code} {manifests.content!r}")
        expect(manifests.headers.get("Content-Type", "").startswith("application/json"), f"manifests: {manifests.headers}")
        expect(isinstance(manifests.parsed, KubernetesList), f"manifests: not a List: {manifests.parsed!r}")
        kinds = [item.to_dict()["kind"] for item in manifests.parsed.items]
        expect(kinds[0] == "Service" and "EndpointSlice" in kinds, f"manifests: kinds {kinds}")
        service_object = manifests.parsed.items[0].to_dict()
        expect(service_object["metadata"]["name"] == name and "selector" not in service_object["spec"], f"manifests: {service_object}")

        pushed = push_service.sync_detailed(namespace, name, client=client, body=PushRequest(clusters=[cluster], dry_run=True))
        expect(pushed.status_code == 200, f"push: {pushed.status_code} {pushed.content!r}")
        report = pushed.parsed
        expect(isinstance(report, PushReport), f"push: not a report: {report!r}")
        expect(report.dry_run is True and report.status == PushReportStatus.SUCCESS, f"push: {report.to_dict()}")
        expect([c.cluster for c in report.clusters] == [cluster], f"push: clusters {report.to_dict()}")
        objects = {(o.kind, o.name): o.action.value for o in report.clusters[0].objects}
        expect(objects.get(("Service", name)) == "created", f"push: objects {objects}")

        deleted = delete_service.sync_detailed(namespace, name, client=client)
        expect(deleted.status_code == 204, f"delete: {deleted.status_code} {deleted.content!r}")
        gone = get_service.sync_detailed(namespace, name, client=client)
        expect(gone.status_code == 404 and isinstance(gone.parsed, Problem), f"get after delete: {gone.status_code} {gone.content!r}")
        expect(gone.parsed.status == 404, f"get after delete: {gone.parsed.to_dict()}")
    print("generated client: create, get, list, manifests, push dry run, delete: ok")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as failure:
        print(f"generated client: {failure}", file=sys.stderr)
        sys.exit(1)
