"""One synthesis for the whole session: two stacks in one app, checked by cdk-nag.

- `dev`: every context option at its default (Cognito, presigned URLs, dev removal).
- `prod`: the other branch of every option, given as strings the way `-c key=value`
  passes them (production, external JWT issuer, existing secret, CloudFront, email).

Assets are not bundled (`aws:cdk:bundling-stacks` = []), so no pip and no Docker run;
building and synthesizing both stacks takes about five seconds (once per xdist worker).
"""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Template

from infra.config import DeploymentConfig
from infra.stack import AgentFilesStack, add_checks, new_app
from tests.infra.synthesis import PROD_CONTEXT, Assembly, Synthesized


@pytest.fixture(scope="session")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> Assembly:
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = new_app({"aws:cdk:bundling-stacks": []}, outdir=str(outdir))
    dev_config = DeploymentConfig.from_context(app.node.try_get_context)
    prod_config = DeploymentConfig.from_context(PROD_CONTEXT.get)
    dev_stack = AgentFilesStack(app, dev_config.stack_name, config=dev_config)
    prod_stack = AgentFilesStack(app, prod_config.stack_name, config=prod_config)
    add_checks(app)

    synth_error = None
    try:
        app.synth()
    except RuntimeError as error:
        # cdk-nag findings stop synthesis, but the templates and the report are written.
        synth_error = str(error)
    report_path = outdir / "validation-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else None

    def load(stack: AgentFilesStack) -> Synthesized:
        path = outdir / stack.template_file
        data = json.loads(path.read_text())
        return Synthesized(stack=stack, template=Template.from_json(data), data=data, path=path)

    return Assembly(
        dev=load(dev_stack), prod=load(prod_stack), synth_error=synth_error, validation_report=report
    )


@pytest.fixture(scope="session")
def dev(assembly: Assembly) -> Synthesized:
    return assembly.dev


@pytest.fixture(scope="session")
def prod(assembly: Assembly) -> Synthesized:
    return assembly.prod


@pytest.fixture(scope="session", params=["dev", "prod"])
def any_stack(request: pytest.FixtureRequest, assembly: Assembly) -> Synthesized:
    """Properties that must hold whatever the context says."""
    return getattr(assembly, request.param)
