"""The GitHub Actions workflows: ci runs the fresh-machine path (.ci/run) and deploy
calls it before deploying; each deploy job assumes its stage's role by OIDC in its own
environment (the one infra/deploy-role.json trusts), packages and deploys its stage with
the Makefile's targets, and names the template scripts/deploy.py deploys. actionlint
(make lint) checks their syntax and expressions; this checks what they promise. No
GitHub runner ran them here."""

from __future__ import annotations

import json
import os
import re
import subprocess  # nosec B404: runs make and bash with fixed arguments
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts import deploy

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
STAGES = ("dev", "prod")
CONFIGURE = "aws-actions/configure-aws-credentials@"


def _workflow(name: str) -> dict[str, Any]:
    raw: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    raw["on"] = raw.pop(True)  # YAML 1.1 reads the key `on` as true
    loaded: dict[str, Any] = raw
    return loaded


def _deploy_job(stage: str) -> dict[str, Any]:
    job: dict[str, Any] = _workflow("deploy.yml")["jobs"][stage]
    return job


def _steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = job["steps"]
    return steps


def _index(steps: list[dict[str, Any]], found: str) -> int:
    """The one step whose ``run`` script has the line ``found``, or that uses ``found``."""
    [index] = [
        i
        for i, step in enumerate(steps)
        if found in str(step.get("run", "")).splitlines() or step.get("uses", "") == found
    ]
    return index


def test_ci_runs_the_fresh_machine_path_on_pushes_and_pull_requests() -> None:
    """``bash .ci/run`` (what CI runs here: system prerequisites, then make test), on
    every push but main's, every pull request, and when deploy calls it: main and the
    tags are tested by deploy.yml's call, so every push is tested once."""
    ci = _workflow("ci.yml")
    assert ci["on"] == {
        "push": {"branches-ignore": ["main"]},
        "pull_request": None,
        "workflow_call": None,
    }
    assert set(_workflow("deploy.yml")["on"]["push"]) == {"branches", "tags"}
    assert _workflow("deploy.yml")["on"]["push"]["branches"] == ["main"]
    assert ci["permissions"] == {"contents": "read"}
    [job] = ci["jobs"].values()
    assert job["timeout-minutes"]
    assert _steps(job)[_index(_steps(job), "bash .ci/run")]["run"] == "bash .ci/run"
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()


def test_every_deploy_waits_for_the_tests_of_the_same_run() -> None:
    jobs = _workflow("deploy.yml")["jobs"]
    assert jobs["test"]["uses"] == "./.github/workflows/ci.yml"
    assert set(jobs) == {"test", *STAGES}
    for stage in STAGES:
        assert jobs[stage]["needs"] == "test"


def test_dev_deploys_on_main_and_prod_on_version_tags_or_by_hand() -> None:
    deploy_yml = _workflow("deploy.yml")
    assert deploy_yml["on"]["push"]["tags"] == ["v*"]
    assert "workflow_dispatch" in deploy_yml["on"]
    assert _deploy_job("dev")["if"] == (
        "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    )
    assert _deploy_job("prod")["if"] == (
        "startsWith(github.ref, 'refs/tags/v') || github.event_name == 'workflow_dispatch'"
    )


@pytest.mark.parametrize("stage", STAGES)
def test_each_deploy_assumes_its_stages_role_by_oidc_in_its_environment(stage: str) -> None:
    """Only the deploy jobs may ask for an OIDC token (the workflow grants nothing, the
    test job reads only); the environment is the one whose ``sub`` the stage's role in
    infra/deploy-role.json trusts."""
    deploy_yml = _workflow("deploy.yml")
    assert deploy_yml["permissions"] == {}
    assert deploy_yml["jobs"]["test"]["permissions"] == {"contents": "read"}
    job = _deploy_job(stage)
    assert job["environment"] == stage
    assert job["permissions"] == {"id-token": "write", "contents": "read"}
    [configure] = [s for s in _steps(job) if s.get("uses", "").startswith(CONFIGURE)]
    assert int(configure["uses"].removeprefix(CONFIGURE + "v")) >= 4
    assert configure["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    assert configure["with"]["aws-region"]
    role = json.loads((ROOT / "infra" / "deploy-role.json").read_text(encoding="utf-8"))
    trust = role["Resources"][f"{stage.capitalize()}GitHubRole"]["Properties"]
    [statement] = trust["AssumeRolePolicyDocument"]["Statement"]
    sub = statement["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]
    assert sub["Fn::Sub"].endswith(f":environment:{job['environment']}")
    outputs = {o["Description"] for o in role["Outputs"].values()}
    for variable in ("AWS_DEPLOY_ROLE_ARN", "AWS_CLOUDFORMATION_ROLE_ARN"):
        assert f"The {stage} GitHub environment's {variable}" in outputs


def test_no_workflow_holds_aws_keys_or_any_secret() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        text = path.read_text(encoding="utf-8")
        for key in ("aws-access-key-id", "aws-secret-access-key", "aws-session-token"):
            assert key not in text.lower(), path.name
        assert "AWS_ACCESS_KEY_ID" not in text and "AWS_SECRET_ACCESS_KEY" not in text
        assert "secrets." not in text, path.name


@pytest.mark.parametrize("stage", STAGES)
def test_each_deploy_packages_then_deploys_its_stage_as_the_service_role(stage: str) -> None:
    """``make package`` before any credentials exist, then the credentials, then ``make
    deploy`` (lint, the rehearsal, package again, scripts/deploy.py) with the stage's
    CloudFormation service role as DEPLOY_ROLE_ARN."""
    steps = _steps(_deploy_job(stage))
    package = _index(steps, f"make package STAGE={stage}")
    [configure] = [i for i, s in enumerate(steps) if s.get("uses", "").startswith(CONFIGURE)]
    run = _index(steps, f"make deploy STAGE={stage}")
    assert package < configure < run
    assert steps[run]["env"]["DEPLOY_ROLE_ARN"] == "${{ vars.AWS_CLOUDFORMATION_ROLE_ARN }}"


def _run_without_make(script: str, environ: dict[str, str]) -> dict[str, str]:
    """The environment ``script`` would give ``make``: each ``make`` line prints it."""
    printing = re.sub(r"^make .*$", "env", script, flags=re.MULTILINE)
    result = subprocess.run(  # noqa: S603 - bash with our own script
        ["/bin/bash", "-euo", "pipefail", "-c", printing],
        env={"PATH": os.environ["PATH"], **environ},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


@pytest.mark.parametrize("stage", STAGES)
def test_the_issuer_is_passed_only_when_the_variable_is_set(stage: str) -> None:
    """scripts/deploy.py refuses an empty PARAM_Issuer (not an https URL), so the step
    exports it only from a non-empty ISSUER variable; without one the stack keeps its
    own."""
    job = _deploy_job(stage)
    steps = _steps(job)
    step = steps[_index(steps, f"make deploy STAGE={stage}")]
    assert step["env"]["STAGE_ISSUER"] == "${{ vars.ISSUER }}"
    assert "ISSUER" not in step["env"]  # the rehearsal's functions would take it
    given_anywhere = [job.get("env", {}), *(s.get("env", {}) for s in steps)]
    assert not [k for env in given_anywhere for k in env if k.startswith("PARAM_")]
    with pytest.raises(deploy.DeployError, match="not an https URL"):
        deploy.issuer_url("", "Issuer")
    assert "PARAM_Issuer" not in _run_without_make(step["run"], {"STAGE_ISSUER": ""})
    given = _run_without_make(step["run"], {"STAGE_ISSUER": "https://auth.example.com"})
    assert given["PARAM_Issuer"] == "https://auth.example.com"


@pytest.mark.parametrize("stage", STAGES)
def test_one_deploy_of_a_stage_at_a_time_never_cancelled(stage: str) -> None:
    job = _deploy_job(stage)
    assert job["concurrency"] == {"group": f"deploy-{stage}", "cancel-in-progress": False}
    assert job["timeout-minutes"] > deploy.MAX_WAIT_SECONDS / 60


def _make_dry_run(stage: str) -> list[str]:
    """The commands ``make package STAGE=<stage>`` would run."""
    result = subprocess.run(  # noqa: S603 - fixed arguments
        ["make", "--dry-run", "--no-print-directory", "package", f"STAGE={stage}"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.replace("\\\n", " ").splitlines()


@pytest.mark.parametrize("stage", STAGES)
def test_the_template_deployed_is_the_one_make_package_writes_and_the_docs_name(
    stage: str,
) -> None:
    """scripts/deploy.py's default template is where ``make package`` writes it and runs
    cfn-lint on it, what the deploy job keeps as an artifact, and what the README and the
    deploying page (docs/operations/deploying.md) say."""
    template = deploy.stage_package_dir(stage) / deploy.TEMPLATE_FILE
    relative = template.relative_to(ROOT).as_posix()
    commands = _make_dry_run(stage)
    [chalice] = [c.split() for c in commands if "chalice package" in c]
    assert f"{chalice[-1]}/{deploy.TEMPLATE_FILE}" == relative
    [lint] = [c.split() for c in commands if "cfn-lint" in c]
    assert lint[-1] == relative
    [artifact] = [
        s
        for s in _steps(_deploy_job(stage))
        if s.get("uses", "").startswith("actions/upload-artifact@")
    ]
    assert relative in artifact["with"]["path"].split()
    named = relative.replace(f"package-{stage}", "package-<stage>")
    for doc in ("README.md", "docs/operations/deploying.md"):
        assert named in (ROOT / doc).read_text(encoding="utf-8"), doc
