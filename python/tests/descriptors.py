"""Turns protobuf descriptors into the contract's notation so they can be compared."""

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FieldDescriptor as FD

_SCALARS = {
    FD.TYPE_STRING: "string",
    FD.TYPE_BOOL: "bool",
    FD.TYPE_INT32: "int32",
    FD.TYPE_INT64: "int64",
    FD.TYPE_DOUBLE: "double",
    FD.TYPE_BYTES: "bytes",
    FD.TYPE_FLOAT: "float",
    FD.TYPE_UINT32: "uint32",
    FD.TYPE_UINT64: "uint64",
}


def _single_type(fd):
    if fd.type in (FD.TYPE_MESSAGE, FD.TYPE_GROUP):
        return fd.message_type.name
    if fd.type == FD.TYPE_ENUM:
        return fd.enum_type.name
    return _SCALARS[fd.type]


def field_type(fd):
    if fd.type == FD.TYPE_MESSAGE and fd.message_type.GetOptions().map_entry:
        key = fd.message_type.fields_by_name["key"]
        value = fd.message_type.fields_by_name["value"]
        return f"map<{_single_type(key)},{_single_type(value)}>"
    # protobuf 6 replaced `label` with `is_repeated`.
    repeated = fd.is_repeated if hasattr(fd, "is_repeated") else fd.label == FD.LABEL_REPEATED
    if repeated:
        return "repeated " + _single_type(fd)
    return _single_type(fd)


def message_fields(desc):
    return {f.name: (f.number, field_type(f)) for f in desc.fields}


def service_rpcs(service_desc):
    rpcs = {}
    for m in service_desc.methods:
        proto = descriptor_pb2.MethodDescriptorProto()
        m.CopyToProto(proto)
        assert not proto.client_streaming, f"{m.name}: the contract has no client streaming"
        rpcs[m.name] = (m.input_type.name, m.output_type.name, proto.server_streaming)
    return rpcs
