"""The SAM template (template.yaml) and samconfig.toml.

The linters (cfn-lint, ``sam validate --lint``) must be clean, and the properties the architecture
promises are asserted on the parsed template: a private, encrypted, TLS-only bucket with lifecycle
expiry; least-privilege IAM; Batch retry strategies that retry only infrastructure loss; Spot first;
the alarms; the Outputs the CLI reads; and the wiring between the template and the state machine.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
SAMCONFIG_PATH = ROOT / "samconfig.toml"
ASL_PATH = ROOT / "statemachine" / "pipeline.asl.json"
BIN = Path(sys.executable).parent

OUTPUTS = {
    "StateMachineArn",
    "PipelineBucketName",
    "JobQueueArn",
    "EcrRepositoryUri",
    "AlertsTopicArn",
    "DashboardName",
    "StateMachineLogGroupName",
    "BatchLogGroupName",
    "DetectJobDefinitionArn",
    "ClassifyJobDefinitionArn",
    "MaterializeJobDefinitionArn",
}
FUNCTIONS = {
    "PlanDetectionFunction": "functions/plan_detection/",
    "PlanClassificationFunction": "functions/plan_classification/",
    "MaterializeFunction": "functions/materialize/",
    "RecordFailureFunction": "functions/record_failure/",
}
JOB_DEFINITIONS = {
    # name: (command verb, Ref:: parameters, GPUs)
    "DetectJobDefinition": ("detect", {"run_uri", "shard"}, "1"),
    "ClassifyJobDefinition": ("classify", {"run_uri", "shard"}, "1"),
    "MaterializeJobDefinition": ("materialize", {"run_uri"}, None),
}
# Where each role may write in the pipeline bucket: the run folder's parts its code writes, no more.
WRITES = {
    "PlanDetectionFunction": ("runs/*",),
    "PlanClassificationFunction": ("runs/*/stage2/",),
    "MaterializeFunction": ("runs/*/final/", "index/"),
    "RecordFailureFunction": ("runs/*/final/",),
    "DetectJobRole": ("runs/*/stage1/", "runs/*/crops/"),
    "ClassifyJobRole": ("runs/*/stage2/",),
    "MaterializeJobRole": ("runs/*/final/", "index/"),
    "PipelineStateMachine": ("map-results/",),
}
# Actions that take no resource-level scoping; only these may have Resource "*".
STAR_ONLY_ACTIONS = {
    # Metrics take no resource; the statement is held to the pipeline's namespace (asserted below).
    "cloudwatch:PutMetricData",
    # submitJob.sync polls jobs (TerminateJob is scoped to job ARNs).
    "batch:DescribeJobs",
    # Step Functions' CloudWatch Logs delivery.
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    # Logging in to ECR before pulling the image.
    "ecr:GetAuthorizationToken",
}


def subprocess_env() -> dict[str, str]:
    """The environment for the linters: fake credentials and a region, never a real account."""
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        SAM_CLI_TELEMETRY="0",
    )
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not installed next to {sys.executable} (make venv installs it)")
    return str(path)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    # samtranslator's loader turns !Ref, !Sub, !GetAtt ... into their JSON forms.
    return yaml_parse(TEMPLATE_PATH.read_text())


@pytest.fixture(scope="module")
def resources(template) -> dict[str, Any]:
    return template["Resources"]


def of_type(resources: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in resources.items() if r["Type"] == resource_type}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def iam_statements(resources: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every IAM statement the template grants: inline role policies and SAM function/state machine policies."""
    for name, resource in resources.items():
        props = resource.get("Properties", {})
        documents = []
        if resource["Type"] == "AWS::IAM::Role":
            documents += [p["PolicyDocument"] for p in props.get("Policies", [])]
        if resource["Type"] in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            documents += [p for p in props.get("Policies", []) if isinstance(p, dict) and "Statement" in p]
        if resource["Type"] == "AWS::IAM::Policy":  # a policy of its own: its statements are its roles'
            for role in props["Roles"]:
                # SAM names a function's role "<function>Role"; its statements are listed as the function's.
                owner = role["Ref"].removesuffix("Role") if role["Ref"].endswith("FunctionRole") else role["Ref"]
                yield from ((owner, statement) for statement in props["PolicyDocument"]["Statement"])
            continue
        for document in documents:
            for statement in document["Statement"]:
                if "Fn::If" in statement:  # a conditional statement: the granted branch
                    statement = statement["Fn::If"][1]
                yield name, statement


def fn_sub_text(value: Any) -> str:
    assert isinstance(value, dict) and "Fn::Sub" in value, value
    return value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]


# --- linters ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_cfn_lint_reports_nothing():
    result = subprocess.run(
        [tool("cfn-lint"), str(TEMPLATE_PATH)], capture_output=True, text=True, env=subprocess_env(), timeout=120
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


@pytest.mark.slow
def test_sam_validate_lint_passes_offline():
    result = subprocess.run(
        [tool("sam"), "validate", "--lint", "--template", str(TEMPLATE_PATH)],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        cwd=ROOT,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_account_id_or_credentials_in_the_deploy_files():
    for path in (TEMPLATE_PATH, SAMCONFIG_PATH, ASL_PATH):
        text = path.read_text()
        assert not re.search(r"(?<![\d.])\d{12}(?![\d.])", text), f"{path.name} contains a 12-digit account id"
        assert not re.search(r"AKIA[0-9A-Z]{16}", text), f"{path.name} contains an access key"


# --- bucket -----------------------------------------------------------------------------------


def test_pipeline_bucket_is_private_encrypted_and_owner_enforced(resources):
    bucket = resources["PipelineBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    [rule] = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert rule["BucketKeyEnabled"] is True
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert resources["PipelineBucket"]["DeletionPolicy"] == "Retain"


def test_pipeline_bucket_refuses_plain_http(resources):
    policy = resources["PipelineBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "PipelineBucket"}
    [deny] = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert deny["Principal"] == "*"
    assert deny["Action"] == "s3:*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert {"Fn::GetAtt": ["PipelineBucket", "Arn"]} in deny["Resource"]
    assert {"Fn::Sub": "${PipelineBucket.Arn}/*"} in deny["Resource"]


def test_intermediate_files_and_stale_uploads_expire(resources):
    rules = resources["PipelineBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    [intermediate] = [r for r in rules if r.get("TagFilters")]
    assert intermediate["Status"] == "Enabled"
    assert intermediate["TagFilters"] == [{"Key": "lifecycle", "Value": "intermediate"}]
    assert intermediate["ExpirationInDays"] == {"Ref": "IntermediateFilesExpireDays"}
    assert not intermediate.get("Prefix"), "a prefix here would make the tag rule miss runs/<id>/stage1/"
    # Step Functions writes the Maps' results untagged, under one prefix (the ASL's ResultWriter).
    [map_results] = [r for r in rules if r.get("Prefix") == "map-results/"]
    assert map_results["ExpirationInDays"] == {"Ref": "IntermediateFilesExpireDays"}
    assert any(r.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") for r in rules)
    if resources["PipelineBucket"]["Properties"].get("VersioningConfiguration", {}).get("Status") == "Enabled":
        assert any("NoncurrentVersionExpiration" in r for r in rules)


# --- IAM --------------------------------------------------------------------------------------


def test_no_broad_managed_s3_policies():
    text = TEMPLATE_PATH.read_text()
    for broad in ("S3CrudPolicy", "S3FullAccess", "AmazonS3FullAccess", "AdministratorAccess", "PowerUserAccess"):
        assert broad not in text, broad


def test_star_resources_only_where_the_action_takes_no_resource(resources):
    statements = list(iam_statements(resources))
    assert len(statements) > 10
    for name, statement in statements:
        if statement["Effect"] != "Allow":
            continue
        actions = set(as_list(statement["Action"]))
        assert not {a for a in actions if a == "*" or a.endswith(":*")}, f"{name}: wildcard action {actions}"
        if "*" in as_list(statement["Resource"]):
            assert actions <= STAR_ONLY_ACTIONS, f"{name}: {actions - STAR_ONLY_ACTIONS} on Resource *"


def test_input_bucket_is_only_ever_read(resources):
    for name, statement in iam_statements(resources):
        text = json.dumps(statement["Resource"])
        if "InputBucketName" in text:
            assert set(as_list(statement["Action"])) <= {"s3:ListBucket", "s3:GetObject"}, name


def test_state_machine_role_is_least_privilege(resources):
    machine = resources["PipelineStateMachine"]["Properties"]
    statements = {s["Sid"]: s for p in machine["Policies"] for s in p["Statement"]}
    invoke = statements["InvokePipelineFunctions"]
    assert invoke["Action"] == "lambda:InvokeFunction"
    assert invoke["Resource"] == [{"Fn::GetAtt": [f, "Arn"]} for f in FUNCTIONS]
    submit = statements["SubmitBatchJobs"]
    assert submit["Action"] == "batch:SubmitJob"
    assert submit["Resource"][0] == {"Fn::GetAtt": ["JobQueue", "JobQueueArn"]}
    # Every revision of each of our job definitions (a run in flight may submit an older one), nothing else.
    names = [fn_sub_text(resources[j]["Properties"]["JobDefinitionName"]) for j in JOB_DEFINITIONS]
    assert [fn_sub_text(r) for r in submit["Resource"][1:]] == [
        f"arn:${{AWS::Partition}}:batch:${{AWS::Region}}:${{AWS::AccountId}}:job-definition/{name}:*" for name in names
    ]
    assert statements["WatchBatchJobs"]["Action"] == "batch:DescribeJobs"
    assert statements["StopBatchJobs"]["Action"] == "batch:TerminateJob"
    assert fn_sub_text(statements["StopBatchJobs"]["Resource"]).endswith(":job/*")
    assert set(statements["WriteMapResults"]["Action"]) == {
        "s3:PutObject",
        "s3:GetObject",
        "s3:ListMultipartUploadParts",
        "s3:AbortMultipartUpload",
    }
    assert set(statements["BatchSyncEventsRule"]["Action"]) == {
        "events:PutTargets",
        "events:PutRule",
        "events:DescribeRule",
    }
    assert fn_sub_text(statements["BatchSyncEventsRule"]["Resource"]).endswith(
        ":rule/StepFunctionsGetEventsForBatchJobsRule"
    )
    assert statements["ReadShardLists"]["Action"] == "s3:GetObject"
    assert statements["ReadShardLists"]["Resource"] == {"Fn::Sub": "${PipelineBucket.Arn}/runs/*"}
    # Distributed Map child executions: the state machine's own ARN, built from its fixed name.
    name = fn_sub_text(machine["Name"])
    assert fn_sub_text(statements["StartMapChildExecutions"]["Resource"]).endswith(f":stateMachine:{name}")
    assert fn_sub_text(statements["ManageMapChildExecutions"]["Resource"]).endswith(f":execution:{name}/*")
    assert set(statements["ManageMapChildExecutions"]["Action"]) == {"states:DescribeExecution", "states:StopExecution"}


def test_roles_that_read_run_files_can_tell_a_missing_file_from_a_forbidden_one(resources):
    # Without s3:ListBucket (unconditioned: a GetObject carries no s3:prefix) S3 answers 403 for a
    # missing key, and storage.exists() would raise instead of returning False.
    readers: dict[str, list[dict[str, Any]]] = {}
    for name, statement in iam_statements(resources):
        readers.setdefault(name, []).append(statement)
    checked = 0
    for name, statements in readers.items():
        reads_runs = any(
            "s3:GetObject" in as_list(s["Action"]) and any("/runs/*" in json.dumps(r) for r in as_list(s["Resource"]))
            for s in statements
        )
        if not reads_runs or name == "PipelineStateMachine":  # the ItemReader fails either way
            continue
        lists = [
            s
            for s in statements
            if s["Action"] == "s3:ListBucket" and s["Resource"] == {"Fn::GetAtt": ["PipelineBucket", "Arn"]}
        ]
        assert lists and all("Condition" not in s for s in lists), name
        checked += 1
    assert checked == len(FUNCTIONS) + len(JOB_DEFINITIONS)  # the four functions and the three job roles


def test_each_function_writes_only_under_its_prefixes(resources):
    for name, statement in iam_statements(resources):
        writes = {a for a in as_list(statement["Action"]) if a in ("s3:PutObject", "s3:DeleteObject")}
        if not writes or statement["Effect"] != "Allow":
            continue
        for resource in as_list(statement["Resource"]):
            text = fn_sub_text(resource)
            assert text.startswith("${PipelineBucket.Arn}/") and text.endswith("/*"), (name, text)
            # Each writer under its own prefixes; map-results/ for the state machine's ResultWriter only.
            assert any(text.startswith(f"${{PipelineBucket.Arn}}/{p}") for p in WRITES[name]), (name, text)


# --- functions, layer, state machine ----------------------------------------------------------


def test_functions_run_python312_on_arm64_with_the_layer_and_tracing(template, resources):
    function_globals = template["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.12"
    assert function_globals["Architectures"] == ["arm64"]
    assert function_globals["Tracing"] == "Active"
    assert function_globals["Layers"] == [{"Ref": "CommonLayer"}]
    variables = function_globals["Environment"]["Variables"]
    assert variables["PIPELINE_BUCKET"] == {"Ref": "PipelineBucket"}
    assert variables["POWERTOOLS_SERVICE_NAME"] == {"Ref": "AWS::StackName"}
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "WildlifePipeline"
    functions = of_type(resources, "AWS::Serverless::Function")
    assert set(functions) == set(FUNCTIONS)
    for name, code_uri in FUNCTIONS.items():
        props = functions[name]["Properties"]
        assert props["CodeUri"] == code_uri
        assert (ROOT / code_uri).is_dir(), code_uri
        assert props.get("Handler", function_globals["Handler"]) == "app.lambda_handler"
        assert "Runtime" not in props and "Architectures" not in props, f"{name} overrides the globals"
        assert not any(isinstance(p, str) for p in props.get("Policies", [])), f"{name} uses a managed policy"


def test_every_function_logs_to_its_own_group_with_retention(resources):
    for name in FUNCTIONS:
        group = resources[name]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert resources[group]["Type"] == "AWS::Logs::LogGroup"
        assert resources[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_materialize_has_the_most_memory_and_the_full_timeout(resources):
    props = resources["MaterializeFunction"]["Properties"]
    assert props["MemorySize"] >= 3008
    assert props["Timeout"] == 900


def test_common_layer_builds_for_python312_arm64(resources):
    layer = resources["CommonLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Properties"]["ContentUri"] == "layers/common/"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    # The layer's Makefile installs the arm64 wheels for python3.12 (tests/integration/test_layer.py).
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}


def test_state_machine_is_standard_traced_and_logged(resources):
    props = resources["PipelineStateMachine"]["Properties"]
    assert props["DefinitionUri"] == "statemachine/pipeline.asl.json"
    assert props["Type"] == "STANDARD"
    assert props["Tracing"] == {"Enabled": True}
    [destination] = props["Logging"]["Destinations"]
    group = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    assert resources[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert props["Logging"]["Level"] in ("ERROR", "ALL")


def test_definition_substitutions_match_the_definition_both_ways(resources):
    substitutions = resources["PipelineStateMachine"]["Properties"]["DefinitionSubstitutions"]
    used = set(re.findall(r"\$\{(\w+)\}", ASL_PATH.read_text()))
    assert set(substitutions) == used


def test_substitutions_point_at_resources_of_the_right_type(resources):
    substitutions = resources["PipelineStateMachine"]["Properties"]["DefinitionSubstitutions"]
    for key, value in substitutions.items():
        if key.endswith("FunctionArn"):
            target, attribute = value["Fn::GetAtt"]
            assert (resources[target]["Type"], attribute) == ("AWS::Serverless::Function", "Arn"), key
            assert key == target + "Arn"
        elif key.endswith("JobDefinitionArn"):
            assert resources[value["Ref"]]["Type"] == "AWS::Batch::JobDefinition", key
            assert key == value["Ref"] + "Arn"
        elif key == "PipelineBucketName":
            assert value == {"Ref": "PipelineBucket"}
        elif key == "JobQueueArn":
            assert value == {"Fn::GetAtt": ["JobQueue", "JobQueueArn"]}
            assert resources["JobQueue"]["Type"] == "AWS::Batch::JobQueue"
    integrations = {
        "LambdaInvoke": "lambda:invoke",
        "BatchSubmitJobSync": "batch:submitJob.sync",
        "S3GetObject": "s3:getObject",
        "S3PutObject": "s3:putObject",
    }
    for key, service in integrations.items():
        assert substitutions[key] == {"Fn::Sub": f"arn:${{AWS::Partition}}:states:::{service}"}


def test_batch_job_parameters_in_the_definition_match_the_job_commands(resources):
    # The state machine passes Batch Parameters; the job definition's command must use exactly those.
    definition = json.loads(ASL_PATH.read_text())
    substitutions = resources["PipelineStateMachine"]["Properties"]["DefinitionSubstitutions"]

    def tasks(states):
        for state in states.values():
            if state.get("Resource") == "${BatchSubmitJobSync}":
                yield state
            if "ItemProcessor" in state:
                yield from tasks(state["ItemProcessor"]["States"])

    seen = set()
    for state in tasks(definition["States"]):
        job_definition = substitutions[state["Parameters"]["JobDefinition"][2:-1]]["Ref"]
        seen.add(job_definition)
        passed = {k.removesuffix(".$") for k in state["Parameters"]["Parameters"]}
        command = resources[job_definition]["Properties"]["ContainerProperties"]["Command"]
        assert {c.removeprefix("Ref::") for c in command if c.startswith("Ref::")} == passed, job_definition
    assert seen == set(JOB_DEFINITIONS)


# --- Batch ------------------------------------------------------------------------------------


def test_job_definitions_retry_only_infrastructure_loss_and_s3_outages_and_end_with_exit(resources):
    from wildlife_gpu.cli import EXIT_TEMPFAIL

    for name in JOB_DEFINITIONS:
        strategy = resources[name]["Properties"]["RetryStrategy"]
        assert 1 <= strategy["Attempts"] <= 10
        rules = strategy["EvaluateOnExit"]
        assert 1 <= len(rules) <= 5, "Batch allows at most 5 evaluateOnExit rules"
        # Batch retries when no rule matches, so the catch-all must be last and say EXIT.
        assert rules[-1] == {"OnReason": "*", "Action": "EXIT"}, name
        assert all(r["Action"] == "RETRY" for r in rules[:-1]), name
        assert {"OnStatusReason": "Host EC2*", "Action": "RETRY"} in rules, "Spot reclaims and host loss"
        # The GPU task's exit status when S3 did not serve a read even after its retries.
        assert {"OnExitCode": str(EXIT_TEMPFAIL), "Action": "RETRY"} in rules, name
        for rule in rules:
            for key in ("OnReason", "OnStatusReason", "OnExitCode"):
                if key in rule:
                    assert "*" not in rule[key][:-1], f"{name}: Batch globs may only end with *"


def test_job_definitions_run_the_gpu_task_image_with_a_timeout_and_logs(resources):
    for name, (verb, parameters, gpus) in JOB_DEFINITIONS.items():
        props = resources[name]["Properties"]
        container = props["ContainerProperties"]
        assert props["Type"] == "container"
        assert props["PropagateTags"] is True
        assert props["Timeout"] == {"AttemptDurationSeconds": {"Ref": "JobAttemptTimeoutSeconds"}}
        assert container["Image"] == {"Fn::Sub": "${EcrRepository.RepositoryUri}:${GpuImageTag}"}
        assert container["Command"][:3] == [verb, "--run", "Ref::run_uri"]
        assert set(props["Parameters"]) == parameters
        requirements = {r["Type"]: r["Value"] for r in container["ResourceRequirements"]}
        assert requirements.get("GPU") == gpus, name
        assert {"VCPU", "MEMORY"} <= set(requirements)
        assert container["JobRoleArn"] == {"Fn::GetAtt": [name.replace("Definition", "Role"), "Arn"]}
        assert container["ExecutionRoleArn"] == {"Fn::GetAtt": ["BatchExecutionRole", "Arn"]}
        assert container["LogConfiguration"]["LogDriver"] == "awslogs"
        assert container["LogConfiguration"]["Options"]["awslogs-group"] == {"Ref": "BatchLogGroup"}
        environment = {e["Name"]: e["Value"] for e in container["Environment"]}
        assert environment["PIPELINE_BUCKET"] == {"Ref": "PipelineBucket"}
    assert resources["BatchLogGroup"]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_compute_environments_scale_to_zero_on_gpu_images(resources):
    environments = of_type(resources, "AWS::Batch::ComputeEnvironment")
    assert set(environments) == {"SpotComputeEnvironment", "OnDemandComputeEnvironment"}
    for name, environment in environments.items():
        compute = environment["Properties"]["ComputeResources"]
        assert compute["MinvCpus"] == 0, name
        assert compute["InstanceTypes"] == {"Ref": "InstanceTypes"}
        assert compute["Ec2Configuration"][0]["ImageType"] in ("ECS_AL2_NVIDIA", "ECS_AL2023_NVIDIA")
    spot = environments["SpotComputeEnvironment"]["Properties"]["ComputeResources"]
    assert (spot["Type"], spot["AllocationStrategy"]) == ("SPOT", "SPOT_PRICE_CAPACITY_OPTIMIZED")
    assert spot["MaxvCpus"] == {"Ref": "MaxvCpus"}
    assert "SpotIamFleetRole" not in spot
    on_demand = environments["OnDemandComputeEnvironment"]["Properties"]["ComputeResources"]
    assert (on_demand["Type"], on_demand["AllocationStrategy"]) == ("EC2", "BEST_FIT_PROGRESSIVE")


def test_job_queue_tries_spot_first(resources):
    order = resources["JobQueue"]["Properties"]["ComputeEnvironmentOrder"]
    by_order = sorted(order, key=lambda e: e["Order"])
    assert [e["ComputeEnvironment"] for e in by_order] == [
        {"Ref": "SpotComputeEnvironment"},
        {"Ref": "OnDemandComputeEnvironment"},
    ]


def test_default_network_has_no_nat_gateway_and_no_inbound_rule(template, resources):
    assert not of_type(resources, "AWS::EC2::NatGateway")
    assert resources["Vpc"]["Condition"] == "CreateNetwork"
    subnets = [r for r in of_type(resources, "AWS::EC2::Subnet").values()]
    assert len(subnets) == 2
    assert {json.dumps(s["Properties"]["AvailabilityZone"]) for s in subnets} == {
        json.dumps({"Fn::Select": [i, {"Fn::GetAZs": ""}]}) for i in (0, 1)
    }
    group = resources["BatchSecurityGroup"]["Properties"]
    assert "SecurityGroupIngress" not in group
    assert not of_type(resources, "AWS::EC2::SecurityGroupIngress")


# --- alerts -----------------------------------------------------------------------------------


def alarms_by_metric(resources) -> dict[tuple[str, str, str], dict[str, Any]]:
    alarms = {}
    for alarm in of_type(resources, "AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        [dimension] = props["Dimensions"]
        key = (props["Namespace"], props["MetricName"], json.dumps(dimension["Value"]))
        alarms[key] = props
    return alarms


def test_alarms_cover_runs_functions_and_image_failures(resources):
    alarms = alarms_by_metric(resources)
    machine = json.dumps({"Ref": "PipelineStateMachine"})
    for metric in ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted", "ExecutionThrottled"):
        alarm = alarms[("AWS/States", metric, machine)]
        assert alarm["Dimensions"][0]["Name"] == "StateMachineArn"
    for function in FUNCTIONS:
        alarm = alarms[("AWS/Lambda", "Errors", json.dumps({"Ref": function}))]
        assert alarm["Dimensions"][0]["Name"] == "FunctionName"
    rate = alarms[("WildlifePipeline", "ImageFailureRate", json.dumps({"Ref": "AWS::StackName"}))]
    # Powertools Metrics adds the service dimension (POWERTOOLS_SERVICE_NAME = the stack name).
    assert rate["Dimensions"][0]["Name"] == "service"
    assert rate["Threshold"] == {"Ref": "ImageFailureRateAlarmPercent"}
    assert rate["TreatMissingData"] == "notBreaching"
    assert len(alarms) == 4 + len(FUNCTIONS) + 1 + 1  # + the schedule's dead letters
    # A run that ends badly is reported once, by RunEndedRule with its cause, not by these alarms too.
    per_run = {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"}
    for (_, metric, _), props in alarms.items():
        assert props.get("AlarmActions") == (None if metric in per_run else [{"Ref": "AlertsTopic"}]), metric
        assert props["TreatMissingData"] == "notBreaching"


def test_each_run_that_ends_badly_is_one_message_and_failed_jobs_are_logged_not_mailed(resources):
    rule = resources["RunEndedRule"]["Properties"]
    assert rule["EventPattern"] == {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"status": ["FAILED", "TIMED_OUT", "ABORTED"], "stateMachineArn": [{"Ref": "PipelineStateMachine"}]},
    }
    [target] = rule["Targets"]
    assert target["Arn"] == {"Ref": "AlertsTopic"}
    template = target["InputTransformer"]["InputTemplate"]
    assert all(f"<{key}>" in template for key in ("name", "status", "cause"))
    jobs = resources["BatchJobFailedRule"]["Properties"]
    assert jobs["EventPattern"]["detail"] == {
        "status": ["FAILED"],
        "jobQueue": [{"Fn::GetAtt": ["JobQueue", "JobQueueArn"]}],
    }
    assert jobs["Targets"] == [{"Id": "FailedJobsLog", "Arn": {"Fn::GetAtt": ["FailedJobsLogGroup", "Arn"]}}]
    assert fn_sub_text(resources["FailedJobsLogGroup"]["Properties"]["LogGroupName"]).startswith("/aws/events/")
    topic_targets = [
        name
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Events::Rule"
        for target in resource["Properties"].get("Targets", [])
        if target["Arn"] == {"Ref": "AlertsTopic"}
    ]
    assert sorted(topic_targets) == ["JobQueueBlockedRule", "RunEndedRule"]


def test_alerts_topic_is_encrypted_with_a_key_alarms_and_events_may_use(resources):
    topic = resources["AlertsTopic"]["Properties"]
    # alias/aws/sns would silently drop alarm notifications: its key policy excludes CloudWatch.
    assert topic["KmsMasterKeyId"] == {"Ref": "AlertsKey"}
    key_statements = resources["AlertsKey"]["Properties"]["KeyPolicy"]["Statement"]
    [services] = [s for s in key_statements if "Service" in s["Principal"]]
    assert set(services["Principal"]["Service"]) == {"cloudwatch.amazonaws.com", "events.amazonaws.com"}
    assert set(services["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    [publish] = resources["AlertsTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert set(publish["Principal"]["Service"]) == {"cloudwatch.amazonaws.com", "events.amazonaws.com"}
    assert publish["Action"] == "sns:Publish"
    assert resources["AlertsEmailSubscription"]["Condition"] == "HasNotificationEmail"


def test_schedule_exists_only_when_asked_and_may_only_start_the_pipeline(template, resources):
    schedule = resources["PipelineSchedule"]
    assert schedule["Type"] == "AWS::Scheduler::Schedule"
    assert schedule["Condition"] == "HasSchedule"
    assert template["Conditions"]["HasSchedule"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ScheduleExpression"}, ""]}]}
    assert template["Parameters"]["ScheduleExpression"]["Default"] == ""
    assert schedule["Properties"]["Target"]["Arn"] == {"Ref": "PipelineStateMachine"}
    assert schedule["Properties"]["Target"]["Input"] == {"Ref": "ScheduleInput"}
    json.loads(template["Parameters"]["ScheduleInput"]["Default"])
    [statement] = resources["ScheduleRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert (statement["Action"], statement["Resource"]) == ("states:StartExecution", {"Ref": "PipelineStateMachine"})
    # A start that fails for good is kept and alarmed on, not lost.
    assert schedule["Properties"]["Target"]["DeadLetterConfig"] == {
        "Arn": {"Fn::GetAtt": ["ScheduleDeadLetterQueue", "Arn"]}
    }
    for name in ("ScheduleDeadLetterQueue", "ScheduleDeadLetterQueuePolicy", "ScheduleFailedAlarm"):
        assert resources[name]["Condition"] == "HasSchedule", name
    alarm = resources["ScheduleFailedAlarm"]["Properties"]
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["ScheduleDeadLetterQueue", "QueueName"]}}
    ]
    assert alarm["AlarmActions"] == [{"Ref": "AlertsTopic"}]


def test_dashboard_body_is_json_once_substituted(resources):
    body = fn_sub_text(resources["Dashboard"]["Properties"]["DashboardBody"])
    filled = re.sub(r"\$\{[\w:.]+\}", "1", body)
    widgets = json.loads(filled)["widgets"]
    metrics = {m[1] for w in widgets for m in w["properties"]["metrics"] if m[0] != "..."}
    assert {"ExecutionsStarted", "Errors", "Duration", "ImageFailureRate", "Images", "TriggeredRules"} <= metrics


def test_outputs_the_cli_reads_exist(template):
    assert set(template["Outputs"]) == OUTPUTS


# --- samconfig.toml ---------------------------------------------------------------------------


def test_samconfig_defines_dev_and_prod_without_a_hardcoded_region():
    config = tomllib.loads(SAMCONFIG_PATH.read_text())
    assert config["version"] == 0.1
    assert config["default"]["global"]["parameters"]["stack_name"]
    assert config["default"]["build"]["parameters"] == {"cached": True, "parallel": True}
    assert config["default"]["validate"]["parameters"] == {"lint": True}
    for env, stack in (("dev", "wildlife-pipeline-dev"), ("prod", "wildlife-pipeline-prod")):
        assert config[env]["global"]["parameters"]["stack_name"] == stack
        deploy = config[env]["deploy"]["parameters"]
        assert deploy["capabilities"] in ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM")
        assert deploy["confirm_changeset"] is True
        assert deploy["resolve_s3"] is True
        assert "region" not in deploy
        assert "InputBucketName" in json.dumps(deploy["parameter_overrides"])
    assert "NotificationEmail" in config["prod"]["deploy"]["parameters"]["parameter_overrides"]


def test_metrics_may_only_be_put_into_the_pipelines_namespace(resources):
    puts = [(n, st) for n, st in iam_statements(resources) if "cloudwatch:PutMetricData" in as_list(st["Action"])]
    assert puts, "the Batch materialize job must be able to feed the image-failure-rate alarm"
    for name, statement in puts:
        assert statement["Condition"] == {"StringEquals": {"cloudwatch:namespace": "WildlifePipeline"}}, name


def _batch_tasks(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        if state.get("Resource") == "${BatchSubmitJobSync}":
            yield name, state
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                yield from _batch_tasks(state[key]["States"])


def test_no_gpu_job_can_keep_a_run_waiting_until_the_execution_times_out(template, resources):
    """A job stuck RUNNABLE is cancelled by the queue, and every Batch task times out after the
    longest its attempts can take, so RecordFailure (not the 7-day execution timeout) ends the run."""
    limits = {a["Reason"]: a for a in resources["JobQueue"]["Properties"]["JobStateTimeLimitActions"]}
    assert set(limits) == {
        "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
        "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
        "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
    }
    assert all(a["Action"] == "CANCEL" and a["State"] == "RUNNABLE" for a in limits.values())
    assert all(600 <= a["MaxTimeSeconds"] <= 86400 for a in limits.values())  # Batch's accepted range
    waiting = max(a["MaxTimeSeconds"] for a in limits.values())
    longest_attempt = template["Parameters"]["JobAttemptTimeoutSeconds"]["MaxValue"]
    asl = json.loads(ASL_PATH.read_text())
    tasks = dict(_batch_tasks(asl["States"]))
    assert set(tasks) == {"DetectShard", "ClassifyShard", "MaterializeOnBatch"}
    for job_definition in JOB_DEFINITIONS:
        attempts = resources[job_definition]["Properties"]["RetryStrategy"]["Attempts"]
        needed = attempts * (waiting + longest_attempt)
        assert all(needed <= task["TimeoutSeconds"] < asl["TimeoutSeconds"] for task in tasks.values())


def test_a_blocked_job_queue_reaches_the_topic_as_readable_text(resources):
    rule = resources["JobQueueBlockedRule"]["Properties"]
    assert rule["EventPattern"] == {
        "source": ["aws.batch"],
        "detail-type": ["Batch Job Queue Blocked"],
        "detail": {"jobQueue": [{"Fn::GetAtt": ["JobQueue", "JobQueueArn"]}]},
    }
    [target] = rule["Targets"]
    assert target["Arn"] == {"Ref": "AlertsTopic"}
    assert "<statusReason>" in target["InputTransformer"]["InputTemplate"]


def test_every_run_that_ends_badly_reaches_record_failure(resources):
    """The safety net for what no Catch sees: the execution's own timeout, an abort, a States.Runtime."""
    [event] = resources["RecordFailureFunction"]["Properties"]["Events"].values()
    assert event["Type"] == "EventBridgeRule"
    pattern = event["Properties"]["Pattern"]
    assert pattern["source"] == ["aws.states"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    assert set(pattern["detail"]["status"]) == {"FAILED", "TIMED_OUT", "ABORTED"}
    name = resources["PipelineStateMachine"]["Properties"]["Name"]["Fn::Sub"]
    assert pattern["detail"]["stateMachineArn"][0]["Fn::Sub"].endswith(f":stateMachine:{name}")


def test_a_deployment_keeps_the_job_definition_revisions_a_running_run_submits(resources):
    for name in JOB_DEFINITIONS:
        assert resources[name]["Properties"]["ResourceRetentionPolicy"] == {"SkipDeregisterOnUpdate": True}


def test_each_job_reads_only_what_it_needs_and_the_input_key_only_when_given(resources, template):
    def reads(role: str) -> str:
        return json.dumps([st["Resource"] for n, st in iam_statements(resources) if n == role])

    for role in ("DetectJobRole", "ClassifyJobRole"):  # SpeciesNet crops from the photo: classify reads it too
        assert "InputBucketName" in reads(role) and "/models/*" in reads(role)
    assert "InputBucketName" not in reads("MaterializeJobRole") and "/models/" not in reads("MaterializeJobRole")
    assert "InputBucketName" not in reads("MaterializeFunction")
    decrypts = [(n, st["Resource"]) for n, st in iam_statements(resources) if "kms:Decrypt" in as_list(st["Action"])]
    # The photos' key for the jobs that read photos; an S3 Inventory report's key for the planner,
    # which alone reads reports; each only when its parameter is given.
    assert sorted(decrypts) == [
        ("ClassifyJobRole", {"Ref": "InputKmsKeyArn"}),
        ("DetectJobRole", {"Ref": "InputKmsKeyArn"}),
        ("PlanDetectionFunction", {"Ref": "InventoryKmsKeyArn"}),
    ]
    assert resources["DecryptInputPolicy"]["Condition"] == "HasInputKey"
    assert resources["DecryptInventoryPolicy"]["Condition"] == "HasInventoryKey"
    assert "InventoryBucketName" in reads("PlanDetectionFunction")
    assert "InventoryBucketName" not in reads("DetectJobRole") + reads("MaterializeFunction")
    assert "AllowedPattern" in template["Parameters"]["InputKmsKeyArn"]


def test_no_role_holds_a_conditional_statement_so_that_checkov_checks_every_role(resources):
    """checkov skips every check of a role whose policy holds an Fn::If statement (found when the job
    roles' and the planner's checks were missing from its report); a grant that needs a parameter is
    an AWS::IAM::Policy with a Condition instead."""
    for name, resource in resources.items():
        props = resource.get("Properties", {})
        documents = [p["PolicyDocument"] for p in props.get("Policies", []) if "PolicyDocument" in p]
        documents += [p for p in props.get("Policies", []) if isinstance(p, dict) and "Statement" in p]
        for document in documents:
            assert not [st for st in document["Statement"] if "Fn::If" in st], name


def test_jobs_cannot_reach_the_instance_role_through_the_metadata_service(resources):
    """Batch runs EC2 jobs with host networking, so the hop limit alone does not stop a job: the
    instance rejects metadata traffic from the image's user, and writes what jobs need to a file."""
    data = resources["BatchLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"] == {"HttpTokens": "required", "HttpPutResponseHopLimit": 1}
    user_data = data["UserData"]["Fn::Base64"]
    assert user_data.startswith("Content-Type: multipart/mixed")  # what Batch accepts
    uid = re.search(r"useradd .*--uid (\d+)", (ROOT / "gpu_task" / "Dockerfile").read_text()).group(1)
    assert re.search(
        rf"iptables --insert OUTPUT --destination 169\.254\.169\.254 .*--uid-owner {uid} --jump REJECT", user_data
    )
    assert "> /etc/wildlife/host.json" in user_data
    # The block comes first: a metadata request that fails at boot must not leave it out.
    assert user_data.index("iptables --insert") < user_data.index("curl ")
    for name in ("DetectJobDefinition", "ClassifyJobDefinition"):
        container = resources[name]["Properties"]["ContainerProperties"]
        [volume] = container["Volumes"]
        assert volume["Host"]["SourcePath"] == "/etc/wildlife"
        assert container["MountPoints"] == [
            {"SourceVolume": volume["Name"], "ContainerPath": "/etc/wildlife", "ReadOnly": True}
        ]


@pytest.mark.parametrize(
    ("parameter", "accepted", "refused"),
    [
        (
            "InstanceTypes",
            ["g4dn.xlarge", "g5.2xlarge", "g6e.xlarge", "p5.48xlarge"],
            ["p3.2xlarge", "g5g.xlarge", "g4ad.xlarge", "m5.large"],
        ),
        ("NotificationEmail", ["", "ops@example.org"], ["ops", "a b@example.org"]),
        (
            "ScheduleExpression",
            ["", "cron(0 3 * * ? *)", "rate(1 day)", "rate(12 hours)"],
            ["daily", "rate(0 days)", "cron(0 3 * * ? *"],
        ),
        ("ScheduleInput", ['{"input": "s3://x/"}'], ["input=s3://x/", ""]),
        ("SubnetIds", ["", "subnet-0123456789abcdef0"], ["subnet-XYZ", "vpc-01234567"]),
        ("SecurityGroupIds", ["", "sg-0123abcd"], ["sg-", "default"]),
        (
            "InputKmsKeyArn",
            [
                "",
                "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab",  # multi-Region
            ],
            ["alias/photos", "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234"],
        ),
        (
            "InventoryKmsKeyArn",
            ["", "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"],
            ["alias/reports"],
        ),
        ("InventoryBucketName", ["", "my-inventory-reports"], ["s3://reports", "Reports"]),
    ],
)
def test_free_form_parameters_refuse_what_would_fail_later(template, parameter, accepted, refused):
    """CloudFormation checks AllowedPattern against the whole value (each element of a list) before
    anything is created; a wrong value fails the deploy in its first second, not at the first run."""
    pattern = re.compile(template["Parameters"][parameter]["AllowedPattern"])
    assert all(pattern.fullmatch(value) for value in accepted)
    assert not any(pattern.fullmatch(value) for value in refused)
    spec = template["Parameters"][parameter]
    default = spec.get("Default", "")
    defaults = default.split(",") if spec["Type"] == "CommaDelimitedList" else [default]
    assert all(pattern.fullmatch(value) for value in defaults), "the default must pass its own pattern"


def test_every_text_parameter_has_a_pattern_or_a_list_of_values(template):
    for name, spec in template["Parameters"].items():
        if spec["Type"] in ("String", "CommaDelimitedList"):
            assert "AllowedPattern" in spec or "AllowedValues" in spec, name


def test_a_runs_default_concurrency_is_what_spot_runs_at_once(template, resources):
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["SPOT_MAX_VCPUS"] == {"Ref": "MaxvCpus"}
    for name in ("DetectJobDefinition", "ClassifyJobDefinition"):
        requirements = resources[name]["Properties"]["ContainerProperties"]["ResourceRequirements"]
        assert {"Type": "VCPU", "Value": variables["JOB_VCPUS"]} in requirements, name


def test_every_checkov_skip_says_why_in_one_line(resources):
    """make lint fails on any checkov finding a resource does not skip; each skip carries its reason."""
    skips = [
        (name, skip)
        for name, resource in resources.items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for name, skip in skips:
        assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), name
        assert len(skip["comment"]) > 20 and "\n" not in skip["comment"], (name, skip["id"])


def test_the_gpu_instances_move_to_the_latest_batch_ami_when_the_stack_updates_them(resources):
    for name in ("SpotComputeEnvironment", "OnDemandComputeEnvironment"):
        properties = resources[name]["Properties"]
        assert properties["ReplaceComputeEnvironment"] is False, name
        assert properties["UpdatePolicy"]["TerminateJobsOnUpdate"] is False, name
        resources_ = properties["ComputeResources"]
        assert resources_["UpdateToLatestImageVersion"] is True, name
        # What an infrastructure update needs: Batch's service-linked role and one of these strategies.
        assert "ServiceRole" not in properties, name
        assert resources_["AllocationStrategy"] in (
            "BEST_FIT_PROGRESSIVE",
            "SPOT_CAPACITY_OPTIMIZED",
            "SPOT_PRICE_CAPACITY_OPTIMIZED",
        )
        assert "ImageId" not in resources_ and "ImageIdOverride" not in resources_["Ec2Configuration"][0], name


def test_image_tags_are_immutable_and_the_image_in_use_is_never_expired(template, resources):
    repository = resources["EcrRepository"]["Properties"]
    assert repository["ImageTagMutability"] == "IMMUTABLE"
    rules = json.loads(repository["LifecyclePolicy"]["LifecyclePolicyText"])["rules"]
    untagged, builds = sorted(rules, key=lambda rule: rule["rulePriority"])
    assert untagged["selection"]["tagStatus"] == "untagged"
    # Only build- images are counted out, and deploy-image moves the stack to each one it pushes, so
    # the image in use is the newest of them.
    assert builds["selection"]["tagPrefixList"] == ["build-"] and builds["selection"]["countNumber"] >= 2
    assert len(rules) == 2
    tag = template["Parameters"]["GpuImageTag"]
    assert re.fullmatch(tag["AllowedPattern"], "build-3f2a9c1b0d4e-dirty-20261202T105500Z")
