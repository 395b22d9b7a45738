"""The OTLP/HTTP wire format: request bodies in, response and error bodies out.

Bodies are read with the official ``opentelemetry-proto`` messages, in binary protobuf
(``application/x-protobuf``) or the OTLP JSON mapping (``application/json``). The JSON mapping
differs from protobuf's own in one place: trace and span ids are hex strings, not base64, so
they are rewritten before protobuf's JSON reader sees them. Gzip request bodies arrive here
already inflated (aiohttp inflates them, bounded by the body limit).

Trace requests are read into :data:`TraceRequest`, the official message with each span's
attributes as a ``map<string, AnyValue>``: the same bytes on the wire, read by key in C.

Answers use the request's encoding: the ``Export*ServiceResponse`` on success (with
``partial_success`` when some items could not be used), a ``google.rpc.Status`` on refusal.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, TypeVar

import msgspec
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import FileDescriptor
from google.protobuf.message import DecodeError, Message
from google.rpc import status_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from .decoder import InvalidBatch

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MEDIA_TYPES = (PROTOBUF, JSON)
ID_KEYS = frozenset(("traceId", "spanId", "parentSpanId"))  # hex in OTLP JSON, base64 in protobuf's mapping

M = TypeVar("M", bound=Message)

# gRPC status codes for the Status body (the HTTP status is what clients act on).
_GRPC_CODES = {400: 3, 401: 16, 403: 7, 408: 4, 413: 3, 415: 3, 429: 8, 503: 14}


def check_media_type(media_type: str) -> None:
    if media_type not in MEDIA_TYPES:
        message = f"Content-Type {media_type or '(none)'!r} is not accepted; send {PROTOBUF} or {JSON} (OTLP/HTTP)"
        raise InvalidBatch("unsupported_media_type", message)


def _file_proto(file: FileDescriptor) -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto()
    file.CopyToProto(proto)
    return proto


def _trace_request_with_attribute_maps() -> type[Message]:
    """ExportTraceServiceRequest with ``Span.attributes`` as ``map<string, AnyValue>``.

    A map field is on the wire a repeated message of ``key = 1`` and ``value = 2``, which is what
    KeyValue is, so the same bytes parse into either. Read as a map, the few keys the mapping
    needs are looked up in C; read as KeyValues, every attribute and its value first become
    Python objects, which took a third of the time spent mapping a span. Of a key given twice
    (which OTLP forbids) the last value counts, as in a dict of them.
    """
    pool = descriptor_pool.DescriptorPool()
    for module in (common_pb2, resource_pb2):
        pool.Add(_file_proto(module.DESCRIPTOR))
    trace = _file_proto(trace_pb2.DESCRIPTOR)
    span = next(message for message in trace.message_type if message.name == "Span")
    entry = span.nested_type.add(name="AttributesEntry")
    entry.options.map_entry = True
    field = descriptor_pb2.FieldDescriptorProto
    entry.field.add(name="key", number=1, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    value_type = f".{common_pb2.AnyValue.DESCRIPTOR.full_name}"
    entry.field.add(name="value", number=2, type=field.TYPE_MESSAGE, label=field.LABEL_OPTIONAL, type_name=value_type)
    attributes = next(found for found in span.field if found.name == "attributes")
    attributes.type_name = f".{trace_pb2.Span.DESCRIPTOR.full_name}.{entry.name}"
    pool.Add(trace)
    pool.Add(_file_proto(trace_service_pb2.DESCRIPTOR))
    request = pool.FindMessageTypeByName(ExportTraceServiceRequest.DESCRIPTOR.full_name)
    return message_factory.GetMessageClass(request)


TraceRequest = _trace_request_with_attribute_maps()


def decode_traces(body: bytes, media_type: str) -> Any:
    """A :data:`TraceRequest` (``Any``: its class is made at import)."""
    if media_type == JSON:  # protobuf's JSON reader knows the attributes as a list only
        official = _decode(body, media_type, ExportTraceServiceRequest())
        return TraceRequest.FromString(official.SerializeToString())
    return _decode(body, media_type, TraceRequest())


def decode_metrics(body: bytes, media_type: str) -> ExportMetricsServiceRequest:
    return _decode(body, media_type, ExportMetricsServiceRequest())


def _decode(body: bytes, media_type: str, message: M) -> M:
    check_media_type(media_type)
    what = type(message).__name__
    if media_type == PROTOBUF:
        try:
            message.ParseFromString(body)
        except DecodeError as exc:
            raise InvalidBatch("malformed", f"the body is not a protobuf {what}: {exc}") from None
        return message
    try:
        tree = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InvalidBatch("malformed", f"the body is not valid JSON: {exc}") from None
    if not isinstance(tree, dict):
        raise InvalidBatch("malformed", f"the body must be a JSON object ({what}), got {type(tree).__name__}")
    try:
        json_format.ParseDict(_base64_ids(tree), message, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError) as exc:
        raise InvalidBatch("malformed", f"the body is not an OTLP JSON {what}: {exc}") from None
    return message


def _base64_ids(node: Any) -> Any:
    """The tree with every hex trace/span id as base64, as protobuf's JSON reader expects."""
    if isinstance(node, list):
        return [_base64_ids(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        key: _base64_id(key, value) if key in ID_KEYS and isinstance(value, str) else _base64_ids(value)
        for key, value in node.items()
    }


def _base64_id(key: str, value: str) -> str:
    try:
        return base64.b64encode(bytes.fromhex(value)).decode()
    except ValueError:
        raise ValueError(f"{key} {value!r} is not a hex id") from None


def encode(message: Message, media_type: str) -> bytes:
    """``message`` in the request's encoding (protobuf unless the request was JSON)."""
    if media_type == JSON:
        return json_format.MessageToJson(message, indent=None).encode()
    return message.SerializeToString()


def traces_response(rejected: int, message: str) -> ExportTraceServiceResponse:
    response = ExportTraceServiceResponse()
    if rejected or message:
        _partial(response, "rejected_spans", rejected, message)
    return response


def metrics_response(rejected: int, message: str) -> ExportMetricsServiceResponse:
    response = ExportMetricsServiceResponse()
    if rejected or message:
        _partial(response, "rejected_data_points", rejected, message)
    return response


def _partial(
    response: ExportTraceServiceResponse | ExportMetricsServiceResponse, counter: str, rejected: int, message: str
) -> None:
    """Sets ``partial_success``: only when something was left out, or clients read it as a warning."""
    setattr(response.partial_success, counter, rejected)
    response.partial_success.error_message = message


def status(http_status: int, message: str) -> status_pb2.Status:
    return status_pb2.Status(code=_GRPC_CODES.get(http_status, 2), message=message)


def hex_id(raw: bytes) -> str:
    """A trace or span id as W3C trace context spells it (lowercase hex)."""
    return binascii.hexlify(raw).decode()
