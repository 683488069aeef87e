"""Schemathesis hooks for scripts/fuzz-api (loaded through SCHEMATHESIS_HOOKS).

The manifests routes answer `application/yaml` as a multi-document stream (one Kubernetes object
per document, as `kubectl apply -f -` reads it); schemathesis' own YAML reader loads a single
document and fails on a stream. This reader loads every document; for the manifests routes it
checks that each is a Kubernetes object (a mapping with apiVersion, kind and metadata.name) and
hands schemathesis the list of documents to validate against the (unconstrained) YAML schema of
the contract; for any other YAML answer (GET /openapi.yaml) it requires exactly one document.
"""
import schemathesis
import yaml
from schemathesis.core.media_types import YAML_MEDIA_TYPES


# Every YAML media type, so that this reader replaces the built-in one wherever it would match.
@schemathesis.deserializer(*YAML_MEDIA_TYPES)
def multi_document_yaml(ctx, response):
    text = response.content.decode(response.encoding or "utf-8")
    documents = [document for document in yaml.safe_load_all(text) if document is not None]
    if "manifests" not in ctx.operation.path:
        # /openapi.yaml: one document.
        if len(documents) != 1:
            raise ValueError(f"expected one YAML document, got {len(documents)}")
        return documents[0]
    for index, document in enumerate(documents):
        if not isinstance(document, dict) or not {"apiVersion", "kind", "metadata"} <= document.keys():
            raise ValueError(f"YAML document {index} is not a Kubernetes object: {document!r:.200}")
        if not isinstance(document["metadata"], dict) or not document["metadata"].get("name"):
            raise ValueError(f"YAML document {index} has no metadata.name")
    return documents


# A dry-run create (POST /v1/services, or PUT of an absent service, with dryRun=true) answers 201
# as the Kubernetes API server does, yet stores nothing: the stateful phase would follow the
# contract's links from that answer and report the service it never created as "not found"
# (ensure_resource_availability). Likewise a dry-run DELETE answers 204 and deletes nothing, which
# the stateful phase reads as a deleted service still being served (use_after_free). Dry runs are
# left to the Swift suite for these three operations.
@schemathesis.hook
def filter_query(ctx, query):
    operation = getattr(ctx, "operation", None)
    if operation is None or (operation.method.upper(), operation.path) not in {
        ("POST", "/v1/services"),
        ("PUT", "/v1/services/{namespace}/{name}"),
        ("DELETE", "/v1/services/{namespace}/{name}"),
    }:
        return True
    return not (query and query.get("dryRun") in (True, "true"))
