"""dspy_agent_infra: async Python clients for the dspy-agent orchestrator and env-manager.

    from dspy_agent_infra import AgentInfra

    async with AgentInfra.start() as infra:
        handle = await infra.orchestrator.submit("cpu_short", {"command": "echo", "args": ["hi"]})
        print((await handle.result(timeout=60)).result)
"""

from ._connection import TLS
from .env_manager import EnvManagerClient
from .errors import (AlreadyExists, DeadlineExceeded, FailedPrecondition, InfraError, InvalidArgument, NotFound,
                     QueueFull, SubmitRefused, TaskFailed, Unauthenticated, Unavailable)
from .infra import AgentInfra, SyncAgentInfra
from .orchestrator import (OrchestratorClient, TaskHandle, TaskResult, TaskSpec, encode_payload,
                           orchestrator_client)

__version__ = "0.1.0"

__all__ = [
    "AgentInfra", "SyncAgentInfra", "OrchestratorClient", "EnvManagerClient", "TaskHandle", "TaskResult", "TaskSpec",
    "TLS", "orchestrator_client", "encode_payload", "InfraError", "Unavailable", "DeadlineExceeded",
    "InvalidArgument", "NotFound", "AlreadyExists", "Unauthenticated", "QueueFull", "FailedPrecondition",
    "SubmitRefused", "TaskFailed", "__version__",
]
