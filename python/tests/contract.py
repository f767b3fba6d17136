"""The wire contract existing clients depend on, transcribed as data.

Each message is "name=number:type; ..." where type is a scalar, a message name,
"repeated T" or "map<K,V>". Each RPC is (request, response, server_streaming).
"""

ENV_MANAGER_PACKAGE = "env_manager.v1"
ENV_MANAGER_SERVICE = "EnvManagerService"
ENV_MANAGER_RPCS = {
    "StartServices": ("StartServicesRequest", "ServiceStatusUpdate", True),
    "StopServices": ("StopServicesRequest", "StopServicesResponse", False),
    "RestartService": ("RestartServiceRequest", "RestartServiceResponse", False),
    "GetServicesStatus": ("GetServicesStatusRequest", "ServicesStatusResponse", False),
    "StreamHealth": ("StreamHealthRequest", "HealthUpdate", True),
    "GetResourceAvailability": ("GetResourceAvailabilityRequest", "ResourceAvailabilityResponse", False),
    "ExecuteTask": ("ExecuteTaskRequest", "ExecuteTaskResponse", False),
    "PullImages": ("PullImagesRequest", "ImagePullProgress", True),
    "StreamLogs": ("StreamLogsRequest", "LogEntry", True),
}
ENV_MANAGER_MESSAGES = {
    "StartServicesRequest": "service_names=1:repeated string; parallel=2:bool; overrides=3:map<string,string>",
    "ServiceStatusUpdate": "service_name=1:string; status=2:string; message=3:string; progress=4:int32",
    "StopServicesRequest": "service_names=1:repeated string; timeout_seconds=2:int32",
    "StopServicesResponse": "success=1:bool; service_results=2:map<string,string>",
    "RestartServiceRequest": "service_name=1:string; timeout_seconds=2:int32",
    "RestartServiceResponse": "success=1:bool; message=2:string",
    "GetServicesStatusRequest": "service_names=1:repeated string",
    "ServicesStatusResponse": "services=1:map<string,ServiceStatus>",
    "ServiceStatus": "name=1:string; status=2:string; container_id=3:string; ports=4:repeated int32; "
    "health_checks=5:map<string,string>; started_at=6:int64; resource_usage=7:ResourceUsage",
    "ResourceUsage": "cpu_percent=1:double; memory_bytes=2:int64; network_rx_bytes=3:int64; network_tx_bytes=4:int64",
    "StreamHealthRequest": "service_names=1:repeated string; interval_seconds=2:int32",
    "HealthUpdate": "service_name=1:string; healthy=2:bool; message=3:string; timestamp=4:int64; "
    "details=5:map<string,string>",
    "GetResourceAvailabilityRequest": "workload_class=1:string",
    "ResourceAvailabilityResponse": "available=1:bool; capacity=2:int32; in_use=3:int32; hardware=4:HardwareInfo",
    "HardwareInfo": "cpu_cores=1:int32; memory_bytes=2:int64; gpus=3:repeated GPU",
    "GPU": "index=1:int32; name=2:string; memory_bytes=3:int64; utilization_percent=4:double",
    "ExecuteTaskRequest": "task_id=1:string; workload_class=2:string; payload=3:map<string,string>; "
    "timeout_seconds=4:int32",
    "ExecuteTaskResponse": "success=1:bool; result=2:map<string,string>; error=3:string; latency_ms=4:double",
    "PullImagesRequest": "image_names=1:repeated string",
    "ImagePullProgress": "image_name=1:string; status=2:string; current=3:int64; total=4:int64; "
    "progress_percent=5:int32",
    "StreamLogsRequest": "service_name=1:string; follow=2:bool; tail=3:int32; since_timestamp=4:int64",
    "LogEntry": "service_name=1:string; container_id=2:string; stream=3:string; message=4:string; timestamp=5:int64",
}

ORCHESTRATOR_PACKAGE = "orchestrator.v1"
ORCHESTRATOR_SERVICE = "OrchestratorService"
ORCHESTRATOR_RPCS = {
    "SubmitTask": ("SubmitTaskRequest", "SubmitTaskResponse", False),
    "StreamTaskResults": ("StreamTaskResultsRequest", "TaskResult", True),
    "GetTaskStatus": ("GetTaskStatusRequest", "GetTaskStatusResponse", False),
    "CreateWorkflow": ("CreateWorkflowRequest", "CreateWorkflowResponse", False),
    "StartWorkflowRun": ("StartWorkflowRunRequest", "StartWorkflowRunResponse", False),
    "StreamWorkflowStatus": ("StreamWorkflowStatusRequest", "WorkflowStatusUpdate", True),
    "GetMetrics": ("GetMetricsRequest", "MetricsResponse", False),
    "StreamEvents": ("StreamEventsRequest", "SystemEvent", True),
    "Health": ("HealthRequest", "HealthResponse", False),
}
ORCHESTRATOR_MESSAGES = {
    "SubmitTaskRequest": "id=1:string; class=2:string; payload=3:map<string,string>; priority=4:int32; "
    "workflow_id=5:string",
    "SubmitTaskResponse": "success=1:bool; task_id=2:string; error=3:string",
    "StreamTaskResultsRequest": "task_ids=1:repeated string; include_completed=2:bool",
    "TaskResult": "task_id=1:string; status=2:string; result=3:map<string,string>; error=4:string; "
    "duration_ms=5:double; completed_at=6:int64",
    "GetTaskStatusRequest": "task_id=1:string",
    "GetTaskStatusResponse": "task_id=1:string; status=2:string; result=3:map<string,string>; error=4:string",
    "CreateWorkflowRequest": "id=1:string; name=2:string; description=3:string; spec=4:bytes",
    "CreateWorkflowResponse": "success=1:bool; workflow_id=2:string; error=3:string",
    "StartWorkflowRunRequest": "workflow_id=1:string; idempotency_key=2:string; input=3:map<string,string>",
    "StartWorkflowRunResponse": "success=1:bool; run_id=2:string; error=3:string",
    "StreamWorkflowStatusRequest": "run_id=1:string",
    "WorkflowStatusUpdate": "run_id=1:string; status=2:string; current_step=3:string; steps_completed=4:int32; "
    "total_steps=5:int32; output=6:map<string,string>; error=7:string",
    "GetMetricsRequest": "metric_names=1:repeated string",
    "MetricsResponse": "metrics=1:map<string,double>; timestamp=2:int64",
    "StreamEventsRequest": "event_types=1:repeated string; since_timestamp=2:int64",
    "SystemEvent": "event_type=1:string; resource_id=2:string; data=3:map<string,string>; timestamp=4:int64",
    "HealthRequest": "",
    "HealthResponse": "healthy=1:bool; version=2:string; services=3:map<string,string>",
}


def parse_fields(spec):
    """'a=1:string; b=2:repeated int32' -> {'a': (1, 'string'), 'b': (2, 'repeated int32')}"""
    fields = {}
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        name, rest = part.split("=", 1)
        number, type_ = rest.split(":", 1)
        fields[name.strip()] = (int(number), type_.strip())
    return fields


# Status words old clients compare against (WIRE-CONTRACT.md section 8). The old CLI
# counts a service as up only when its status is exactly "running".
SERVICE_STATUS_WORDS = frozenset({"running", "starting", "unhealthy", "stopped", "failed"})
# TaskResult / GetTaskStatus words (section 2), plus our documented "cancelled".
TASK_STATUS_WORDS = frozenset({"pending", "running", "completed", "failed", "cancelled"})
