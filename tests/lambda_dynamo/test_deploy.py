"""The SAM templates in deploy/: cfn-lint clean, handlers that exist, least-privilege IAM,
and (on DynamoDB Local) a journal table the DynamoDBStore works with."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws import ddb
from lambda_service.emulator import ROOT

DEPLOY = ROOT / "deploy"
TEMPLATES = sorted(DEPLOY.glob("*/*.yaml"))


def _load(path: Path) -> dict[str, Any]:
    """A template as data; CloudFormation tags (!Ref, !Sub, ...) become {"Fn::X": value}."""
    yaml: Any = pytest.importorskip("yaml")
    loader: Any = type("Loader", (yaml.SafeLoader,), {})

    def tag(loader: Any, suffix: str, node: Any) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {f"Fn::{suffix}": value}

    loader.add_multi_constructor("!", tag)
    data: dict[str, Any] = yaml.load(path.read_text(), Loader=loader)
    return data


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: res["Properties"]
        for name, res in template["Resources"].items()
        if res["Type"] == "AWS::Serverless::Function"
    }


def test_there_is_a_template_per_example_and_mode() -> None:
    assert [str(p.relative_to(DEPLOY)) for p in TEMPLATES] == [
        "order_processing/dynamodb.yaml",
        "order_processing/service.yaml",
        "tour_booking/dynamodb.yaml",
        "tour_booking/service.yaml",
    ]


def test_cfn_lint_finds_no_errors() -> None:
    cfn_lint = shutil.which("cfn-lint", path=str(Path(sys.executable).parent)) or shutil.which(
        "cfn-lint"
    )
    if cfn_lint is None:
        pytest.skip(
            "!!! cfn-lint is NOT installed, so the SAM templates were NOT linted "
            "(pip install -e .[dev])"
        )
    done = subprocess.run(
        [cfn_lint, *map(str, TEMPLATES)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr  # 0: no error, warning or info


def test_every_handler_named_by_a_template_exists() -> None:
    spec = importlib.util.spec_from_file_location("lambda_handlers", DEPLOY / "lambda_handlers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for path in TEMPLATES:
        for name, props in _functions(_load(path)).items():
            module_name, _, attr = props["Handler"].rpartition(".")
            assert module_name == "lambda_handlers", (path, name)
            assert callable(getattr(module, attr)), (path, name, attr)


def test_service_templates_grant_checkpointing_on_the_qualified_function_arn_only() -> None:
    for path in DEPLOY.glob("*/service.yaml"):
        (props,) = _functions(_load(path)).values()
        assert props["DurableConfig"]["ExecutionTimeout"] and props["AutoPublishAlias"]
        function_name = props["FunctionName"]["Fn::Sub"]
        (statement,) = props["Policies"][0]["Statement"]
        assert sorted(statement["Action"]) == [
            "lambda:CheckpointDurableExecution",
            "lambda:GetDurableExecutionState",
        ]
        resource = statement["Resource"]["Fn::Sub"]
        assert resource.endswith(f":function:{function_name}:*"), resource  # qualified


def test_dynamodb_templates_have_a_ttl_table_a_schedule_and_scoped_invoke() -> None:
    for path in DEPLOY.glob("*/dynamodb.yaml"):
        template = _load(path)
        table = template["Resources"]["JournalTable"]["Properties"]
        assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
        sweeper = _functions(template)["SweeperFunction"]
        assert sweeper["Events"]["Sweep"]["Type"] == "Schedule"
        statements = {s["Sid"]: s for s in sweeper["Policies"][0]["Statement"]}
        assert statements["InvokeTheSagaFunction"]["Action"] == "lambda:InvokeFunction"
        target = sweeper["Environment"]["Variables"]["DURABLE_FUNCTION_NAME"]["Fn::Sub"]
        for arn in statements["InvokeTheSagaFunction"]["Resource"]:
            assert f":function:{target}" in arn["Fn::Sub"]
        for props in _functions(template).values():
            for statement in props["Policies"][0]["Statement"]:
                actions = statement["Action"]
                actions = actions if isinstance(actions, list) else [actions]
                assert all("*" not in a for a in actions), statement  # no wildcard actions


@pytest.mark.aws
def test_the_template_table_serves_the_dynamodb_store() -> None:
    from durable_core.aws_lambda import dynamodb_handler, sweeper_handler
    from durable_core.stores.dynamodb import DynamoDBStore
    from durable_core.testing import VirtualClock
    from examples.hello_durable.workflow import COOL_OFF, hello

    props = _load(DEPLOY / "tour_booking" / "dynamodb.yaml")["Resources"]["JournalTable"][
        "Properties"
    ]
    client = ddb.client()
    name = "template-table-check"
    client.create_table(
        TableName=name,
        **{k: props[k] for k in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes")},
        BillingMode=props["BillingMode"],
    )
    try:
        store, clock = DynamoDBStore(name, client=client), VirtualClock()
        handler = dynamodb_handler(hello, store=store, clock=clock)
        order = {"order_id": "T-1", "amount": 10}
        assert handler({"execution_id": "t-1", "input": order}, None)["status"] == "RUNNING"
        clock.advance(COOL_OFF)
        sweep = sweeper_handler(store=store, functions=[hello], clock=clock)
        assert sweep({}, None) == {"ran": 1}  # found through the template's due_index
        assert store.get_execution("t-1").status.value == "SUCCEEDED"
        assert [e.id for e in store.list_executions()] == ["t-1"]  # created_index
    finally:
        client.delete_table(TableName=name)
