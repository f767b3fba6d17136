"""The proto files, and what the running daemons serve, match the wire contract."""

import grpc
import pytest
from google.protobuf import descriptor_pool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

import contract
from descriptors import message_fields, service_rpcs

CASES = [
    ("env_manager", contract.ENV_MANAGER_PACKAGE, contract.ENV_MANAGER_SERVICE, contract.ENV_MANAGER_RPCS,
     contract.ENV_MANAGER_MESSAGES),
    ("orchestrator", contract.ORCHESTRATOR_PACKAGE, contract.ORCHESTRATOR_SERVICE, contract.ORCHESTRATOR_RPCS,
     contract.ORCHESTRATOR_MESSAGES),
]


def check_against_contract(pool_or_module_desc, package, service, rpcs, messages, find_message):
    served = service_rpcs(pool_or_module_desc)
    for rpc, shape in rpcs.items():
        assert rpc in served, f"{package}.{service} lacks RPC {rpc}"
        assert served[rpc] == shape, f"{rpc}: served {served[rpc]}, contract {shape}"
    for name, spec in messages.items():
        want = contract.parse_fields(spec)
        have = message_fields(find_message(f"{package}.{name}"))
        for field, (number, type_) in want.items():
            assert field in have, f"{name} lacks field {field}"
            assert have[field] == (number, type_), f"{name}.{field}: proto {have[field]}, contract {(number, type_)}"
        # Additions must use new numbers: none may reuse a contract number.
        numbers = [n for n, _ in have.values()]
        assert len(numbers) == len(set(numbers)), f"{name} reuses a field number"


@pytest.mark.parametrize("which,package,service,rpcs,messages", CASES, ids=[c[0] for c in CASES])
def test_proto_files_match_the_contract(stubs, which, package, service, rpcs, messages):
    module = stubs.em_pb2 if which == "env_manager" else stubs.orch_pb2
    pool = module.DESCRIPTOR.pool
    check_against_contract(pool.FindServiceByName(f"{package}.{service}"), package, service, rpcs, messages,
                           pool.FindMessageTypeByName)


@pytest.mark.parametrize("which,package,service,rpcs,messages", CASES, ids=[c[0] for c in CASES])
def test_running_daemons_serve_the_contract_over_reflection(request, which, package, service, rpcs, messages):
    daemon = request.getfixturevalue("env_manager" if which == "env_manager" else "orchestrator")
    with daemon.channel() as ch:
        db = ProtoReflectionDescriptorDatabase(ch)
        names = set(db.get_services())
        assert f"{package}.{service}" in names
        assert "grpc.health.v1.Health" in names
        pool = descriptor_pool.DescriptorPool(db)
        check_against_contract(pool.FindServiceByName(f"{package}.{service}"), package, service, rpcs, messages,
                               pool.FindMessageTypeByName)


def test_python_clients_set_the_class_field_with_setattr(stubs):
    req = stubs.orch_pb2.SubmitTaskRequest(id="t1", payload={"k": "v"}, priority=3)
    setattr(req, "class", "cpu_long")
    wire = req.SerializeToString()
    back = stubs.orch_pb2.SubmitTaskRequest.FromString(wire)
    assert getattr(back, "class") == "cpu_long"
    assert back.payload["k"] == "v"


def test_stream_events_is_built_and_names_a_bad_filter(stubs, orchestrator):
    with orchestrator.channel() as ch:
        stub = stubs.orch_grpc.OrchestratorServiceStub(ch)
        with pytest.raises(grpc.RpcError) as err:
            for _ in stub.StreamEvents(stubs.orch_pb2.StreamEventsRequest(event_types=["nope"]), timeout=5):
                pass
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "'nope'" in err.value.details()


def test_orchestrator_health_rpc_reports_its_version(stubs, orchestrator):
    with orchestrator.channel() as ch:
        resp = stubs.orch_grpc.OrchestratorServiceStub(ch).Health(stubs.orch_pb2.HealthRequest(), timeout=5)
    assert resp.healthy
    assert resp.version
    assert resp.services["grpc"] == "serving"
