"""Deploy a stage as one CloudFormation stack: the template ``make package`` wrote.

    python -m scripts.deploy --stage dev|prod [--parameter Name=value ...]

``chalice deploy`` creates the functions and the API from its own model and never reads
``infra/template.json``, so the table, the secret, the queues, the gateway responses,
the access log, the alarms, the dashboard and the optional parts would be left out. This
deploys ``.local/package-<stage>/sam.json`` (Chalice's template merged with ours) as the
stack ``gatehouse-<stage>``, as ``aws cloudformation package`` and ``deploy`` would, with
boto3 only:

1. the artifacts the template names by a local path (the functions' ``CodeUri``, the
   layer's ``ContentUri``) go to an S3 bucket under a key made of their SHA-256, and the
   template names their ``s3://`` URI instead. The bucket is ``DEPLOY_BUCKET``, or
   ``gatehouse-artifacts-<account>-<region>``, created when missing (public access
   blocked, versioned, encrypted, TLS only); every call states the expected owner, so a
   bucket of that name in another account is refused, not written to;
2. the template goes in the request when it fits CloudFormation's 51,200 bytes, and
   through the bucket otherwise (``TemplateURL``);
3. a change set, created and executed: CloudFormation expands the SAM transform
   (``CAPABILITY_AUTO_EXPAND``) and rolls back by itself when a resource fails. A change
   set with no changes is a success. On an update, a parameter not given keeps the
   stack's current value (as ``aws cloudformation deploy`` does), so a redeploy without
   ``PARAM_WebAcl=true`` does not remove the web ACL. With ``--role-arn`` (or
   ``DEPLOY_ROLE_ARN``) CloudFormation creates and changes the resources as that service
   role, so the credentials running this need only drive the stack and pass the role
   (the GitHub Actions deploy role of ``infra/deploy-role.json``).

Parameters: ``Stage`` comes from ``--stage``; any other from ``PARAM_<Name>=value`` in the
environment or ``--parameter Name=value`` (which wins). Exit status 0 when the stack is
deployed (its outputs are printed, the API's URL among them), 1 when the deployment
failed (the failed events are printed), 2 when it could not start.

``Issuer`` (the functions' ``ISSUER``: every token's ``iss``, discovery's ``issuer``) must
be an https URL: a custom domain given as ``PARAM_Issuer=https://...``, else the value
already on the stack, else the stack's own ``EndpointURL``. The functions cannot name the API in
their environment (the API names the functions: a cycle), so a first deploy with none
given takes two steps: the stack is created, then updated with ``Issuer`` set to its
``EndpointURL``. Nothing is issued in between: the new stack's key secrets are empty
until ``scripts.admin rotate-key``, which comes after the deploy.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudformation.type_defs import ParameterTypeDef, StackTypeDef
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sts import STSClient

ROOT = Path(__file__).resolve().parent.parent
#: CloudFormation's limit on a template sent in the request; larger ones go through S3.
MAX_TEMPLATE_BODY = 51_200
#: The properties ``chalice package`` fills with a path relative to its output directory.
LOCAL_ARTIFACTS = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}
#: IAM resources with a name of their own need ``CAPABILITY_NAMED_IAM``.
NAMED_IAM = {
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::User": "UserName",
    "AWS::IAM::Group": "GroupName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
}
#: How CloudFormation reports a change set that would change nothing.
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
#: The template ``make package`` writes into the package directory (``stage_package_dir``).
TEMPLATE_FILE = "sam.json"
#: A CloudFormation service role: an IAM role's ARN, in any partition.
ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")
#: Stack states that cannot take a change set; what to do about each.
STUCK = {
    "ROLLBACK_COMPLETE": "its creation failed and was rolled back",
    "ROLLBACK_FAILED": "its creation failed and the rollback failed too",
    "DELETE_FAILED": "its deletion failed",
}
PARAM_PREFIX = "PARAM_"
#: Give up waiting after this long (CloudFormation goes on; the console shows the end).
MAX_WAIT_SECONDS = 3600
#: The parameter the API and authorizer functions read as ``ISSUER`` (infra/base.json),
#: and Chalice's output naming the API's URL, which it defaults to.
ISSUER = "Issuer"
ENDPOINT_OUTPUT = "EndpointURL"


class DeployError(Exception):
    """A deployment that could not start; printed without a traceback."""


class DeployFailed(Exception):
    """CloudFormation tried and failed (it has rolled back, or says why it could not)."""


@dataclass(frozen=True)
class Clients:
    """The AWS clients a deployment uses, built from one session (tests pass their own)."""

    s3: S3Client
    cloudformation: CloudFormationClient
    sts: STSClient
    region: str

    @classmethod
    def from_session(cls, session: boto3.Session) -> Clients:
        if not session.region_name:
            raise DeployError("no region: set AWS_DEFAULT_REGION (make deploy does)")
        return cls(
            s3=session.client("s3"),
            cloudformation=session.client("cloudformation"),
            sts=session.client("sts"),
            region=session.region_name,
        )


def stack_name(stage: str) -> str:
    return f"gatehouse-{stage}"


def stage_package_dir(stage: str) -> Path:
    """Where ``make package STAGE=<stage>`` writes the stage's package (the Makefile's
    ``.local/package-$(STAGE)``): the default of ``--package-dir``."""
    return ROOT / ".local" / f"package-{stage}"


def load_package(package_dir: Path, stage: str) -> dict[str, Any]:
    """The packaged template, refused when missing or packaged for another stage (its
    functions would point at the other stage's table)."""
    path = package_dir / TEMPLATE_FILE
    if not path.is_file():
        raise DeployError(f"{path} is missing: run make package STAGE={stage}")
    template: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    for name, resource in template.get("Resources", {}).items():
        variables = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        packaged = variables.get("GATEHOUSE_STAGE", stage)
        if packaged != stage:
            raise DeployError(f"{path}: {name} was packaged for stage {packaged!r}, not {stage!r}")
    return template


def parameters(
    template: Mapping[str, Any],
    stage: str,
    environ: Mapping[str, str],
    options: Iterable[str],
) -> dict[str, str]:
    """The stack's parameter values: ``Stage``, then ``PARAM_<Name>`` from the
    environment, then ``--parameter Name=value``. A name the template does not declare,
    a value outside its ``AllowedValues`` and a second ``Stage`` are refused here rather
    than by CloudFormation after the upload."""
    given = {
        name.removeprefix(PARAM_PREFIX): value
        for name, value in environ.items()
        if name.startswith(PARAM_PREFIX)
    }
    for option in options:
        name, equals, value = option.partition("=")
        if not equals or not name:
            raise DeployError(f"--parameter {option!r}: expected Name=value")
        given[name] = value
    if given.setdefault("Stage", stage) != stage:
        raise DeployError(f"Stage={given['Stage']!r} contradicts --stage {stage}")
    declared: Mapping[str, Any] = template.get("Parameters", {})
    for name, value in given.items():
        if name not in declared:
            known = ", ".join(sorted(declared))
            raise DeployError(f"no parameter {name!r} in the template (it has {known})")
        allowed = [str(v) for v in declared[name].get("AllowedValues", [])]
        if allowed and value not in allowed:
            raise DeployError(f"{name}={value!r}: allowed values are {', '.join(allowed)}")
    return given


def issuer_url(value: str, source: str) -> str:
    """``value`` as the Issuer: an https URL with a host and no query, fragment or
    whitespace (every token carries it in ``iss``), without its trailing slash, as the
    functions use it."""
    parts = urlsplit(value)
    if (
        parts.scheme != "https"
        or not parts.hostname
        or parts.query
        or parts.fragment
        or any(c.isspace() for c in value)
    ):
        raise DeployError(
            f"{source} {value!r} is not an https URL: pass PARAM_Issuer=https://... (your "
            f"custom domain, or the stack's {ENDPOINT_OUTPUT} output)"
        )
    return value.rstrip("/")


def service_role(value: str) -> str:
    """``value`` as the change sets' ``RoleARN``, refused before anything is uploaded
    when it is not an IAM role's ARN (CloudFormation would refuse it after the upload)."""
    if not ROLE_ARN.fullmatch(value):
        raise DeployError(
            f"role {value!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)"
        )
    return value


def _outputs(stack: StackTypeDef) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def _parameter(stack: StackTypeDef, name: str) -> str:
    """The stack's current value of ``name`` ("" when it has none)."""
    for parameter in stack.get("Parameters", []):
        if parameter["ParameterKey"] == name:
            return parameter.get("ParameterValue", "")
    return ""


def _endpoint_issuer(stack: StackTypeDef) -> str:
    """The stack's ``EndpointURL`` as the Issuer."""
    endpoint = _outputs(stack).get(ENDPOINT_OUTPUT)
    if endpoint is None:
        raise DeployError(
            f"the stack has no {ENDPOINT_OUTPUT} output to take the Issuer from: pass "
            "PARAM_Issuer=https://... (your custom domain or the API's URL)"
        )
    return issuer_url(endpoint, f"the stack's {ENDPOINT_OUTPUT}")


def _missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in {"404", "NoSuchBucket", "NotFound"}


def ensure_bucket(clients: Clients, bucket: str, account: str, *, create: bool) -> None:
    """Check the artifact bucket is there and the account's; create it when ``create``.

    A new bucket blocks public access, keeps versions (an artifact a stack still
    references stays recoverable), encrypts at rest and refuses plain HTTP."""
    s3 = clients.s3
    try:
        s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=account)
        return
    except ClientError as error:
        if not (_missing(error) and create):
            raise DeployError(f"bucket {bucket}: {error} (is it in this account?)") from None
    print(f"creating the artifact bucket {bucket}")
    if clients.region == "us-east-1":  # the one region that refuses a LocationConstraint
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(
            Bucket=bucket,
            CreateBucketConfiguration={"LocationConstraint": clients.region},  # type: ignore[typeddict-item]
        )
    s3.get_waiter("bucket_exists").wait(Bucket=bucket, ExpectedBucketOwner=account)
    s3.put_public_access_block(
        Bucket=bucket,
        ExpectedBucketOwner=account,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_versioning(
        Bucket=bucket,
        ExpectedBucketOwner=account,
        VersioningConfiguration={"Status": "Enabled"},
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ExpectedBucketOwner=account,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    tls_only = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "TlsOnly",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, ExpectedBucketOwner=account, Policy=json.dumps(tls_only))


@dataclass(frozen=True)
class Uploader:
    """Puts files in the artifact bucket under their content's SHA-256, once each: a
    redeploy of unchanged code uploads nothing and the template stays the same."""

    clients: Clients
    bucket: str
    account: str
    prefix: str

    def put(self, body: bytes, suffix: str) -> str:
        """The object's key; S3 checks the body against the digest it is sent."""
        digest = hashlib.sha256(body).digest()
        key = f"{self.prefix}/{digest.hex()}{suffix}"
        s3 = self.clients.s3
        try:
            s3.head_object(Bucket=self.bucket, Key=key, ExpectedBucketOwner=self.account)
        except ClientError as error:
            if not _missing(error):
                raise
            s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ExpectedBucketOwner=self.account,
                ChecksumSHA256=base64.b64encode(digest).decode("ascii"),
            )
        return key

    def put_file(self, path: Path) -> str:
        """The ``s3://`` URI of the uploaded file."""
        return f"s3://{self.bucket}/{self.put(path.read_bytes(), path.suffix)}"

    def url(self, key: str) -> str:
        """The object's HTTPS URL, as ``TemplateURL`` wants it (on the client's endpoint,
        so the partition's domain is right)."""
        host = urlsplit(self.clients.s3.meta.endpoint_url).netloc
        return f"https://{self.bucket}.{host}/{quote(key)}"


def rewrite_artifacts(
    template: dict[str, Any], package_dir: Path, upload: Callable[[Path], str]
) -> dict[str, Any]:
    """A copy of the template with every local artifact path replaced by the URI
    ``upload`` returns for that file (each file uploaded once)."""
    rewritten: dict[str, Any] = json.loads(json.dumps(template))
    uris: dict[Path, str] = {}
    for name, resource in rewritten.get("Resources", {}).items():
        key = LOCAL_ARTIFACTS.get(resource.get("Type", ""))
        properties = resource.get("Properties", {})
        value = properties.get(key) if key else None
        if not isinstance(value, str) or value.startswith("s3://"):
            continue
        path = (package_dir / value).resolve()
        if not path.is_file():
            raise DeployError(f"{name}.{key}: {path} is missing")
        if path not in uris:
            uris[path] = upload(path)
        properties[key] = uris[path]
    return rewritten


def template_location(template: Mapping[str, Any], uploader: Uploader) -> dict[str, str]:
    """``TemplateBody`` when the template fits in the request, ``TemplateURL`` else."""
    body = json.dumps(template, separators=(",", ":"), sort_keys=True)
    if len(body.encode("utf-8")) <= MAX_TEMPLATE_BODY:
        return {"TemplateBody": body}
    return {"TemplateURL": uploader.url(uploader.put(body.encode("utf-8"), ".template.json"))}


def capabilities(template: Mapping[str, Any]) -> list[str]:
    """What the stack must be allowed: IAM (the functions' roles), named IAM only when
    a resource names itself, and the SAM transform's expansion."""
    named = any(
        NAMED_IAM.get(resource.get("Type", "")) in resource.get("Properties", {})
        for resource in template.get("Resources", {}).values()
    )
    return [
        "CAPABILITY_IAM",
        *(["CAPABILITY_NAMED_IAM"] if named else []),
        "CAPABILITY_AUTO_EXPAND",
    ]


@dataclass
class Stack:
    """One stack's change-set conversation with CloudFormation."""

    cloudformation: CloudFormationClient
    name: str
    poll_seconds: float
    #: The service role CloudFormation acts as; None: the caller's own credentials (or
    #: the role an earlier change set gave the stack, which CloudFormation keeps).
    role_arn: str | None = None
    sleep: Callable[[float], None] = time.sleep

    def current(self) -> StackTypeDef | None:
        """The stack, or None when there is none (or only an unexecuted creation)."""
        try:
            [stack] = self.cloudformation.describe_stacks(StackName=self.name)["Stacks"]
        except ClientError as error:
            if "does not exist" in str(error):
                return None
            raise
        status = stack["StackStatus"]
        if status == "REVIEW_IN_PROGRESS":
            return None
        if status in STUCK:
            raise DeployError(
                f"stack {self.name} is {status}: {STUCK[status]}. Delete it (aws "
                f"cloudformation delete-stack --stack-name {self.name}) and deploy again"
            )
        if status == "UPDATE_ROLLBACK_FAILED":
            raise DeployError(
                f"stack {self.name} is UPDATE_ROLLBACK_FAILED: fix what the events name, "
                f"then aws cloudformation continue-update-rollback --stack-name {self.name}"
            )
        if status.endswith("_IN_PROGRESS"):
            raise DeployError(f"stack {self.name} is {status}: wait for it to finish")
        return stack

    def deploy(
        self,
        location: Mapping[str, str],
        values: Mapping[str, str],
        allowed: list[str],
        existing: StackTypeDef | None,
    ) -> bool:
        """Create and execute a change set on ``existing`` (what ``current`` said; None
        creates the stack); False when there was nothing to change."""
        sent: list[ParameterTypeDef] = [
            {"ParameterKey": k, "ParameterValue": v} for k, v in sorted(values.items())
        ]
        if existing is not None:
            sent += [
                {"ParameterKey": p["ParameterKey"], "UsePreviousValue": True}
                for p in existing.get("Parameters", [])
                if p["ParameterKey"] not in values
            ]
        optional = {**location, **({"RoleARN": self.role_arn} if self.role_arn else {})}
        created = self.cloudformation.create_change_set(
            StackName=self.name,
            ChangeSetName=f"{self.name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}",
            ChangeSetType="CREATE" if existing is None else "UPDATE",
            Parameters=sent,
            Capabilities=allowed,  # type: ignore[arg-type]
            Description="scripts/deploy.py",
            **optional,  # type: ignore[arg-type]
        )
        change_set = created["Id"]
        described = self._wait(
            lambda: self.cloudformation.describe_change_set(ChangeSetName=change_set),
            lambda d: d["Status"] in {"CREATE_PENDING", "CREATE_IN_PROGRESS"},
        )
        if described["Status"] != "CREATE_COMPLETE":
            reason = described.get("StatusReason", "")
            if any(phrase in reason for phrase in NO_CHANGES):
                self.cloudformation.delete_change_set(ChangeSetName=change_set)
                return False
            raise DeployFailed(f"change set {described['Status']}: {reason}")
        started = described["CreationTime"]
        # A rollback deletes what this deployment created, Retain or not (a failed first
        # deploy would otherwise leave the new table, key and secret behind, and the
        # next attempt would fail on their names); what existed before is kept.
        self.cloudformation.execute_change_set(ChangeSetName=change_set, RetainExceptOnCreate=True)
        stack = self._wait(
            lambda: self.cloudformation.describe_stacks(StackName=self.name)["Stacks"][0],
            lambda s: s["StackStatus"].endswith("_IN_PROGRESS"),
        )
        status = stack["StackStatus"]
        if status not in {"CREATE_COMPLETE", "UPDATE_COMPLETE"}:
            raise DeployFailed(
                "\n".join(
                    [
                        f"stack {status}; CloudFormation has rolled back what it changed"
                        " (docs/operations/deploying.md, 'Prerequisites, secrets, rollback')."
                        " Failed events:",
                        *self.failures(started),
                    ]
                )
            )
        return True

    def _wait(self, fetch: Callable[[], Any], pending: Callable[[Any], bool]) -> Any:
        deadline = time.monotonic() + MAX_WAIT_SECONDS
        while pending(latest := fetch()):
            if time.monotonic() > deadline:
                raise DeployFailed(f"still in progress after {MAX_WAIT_SECONDS} s: see the console")
            self.sleep(self.poll_seconds)
        return latest

    def failures(self, since: datetime) -> list[str]:
        """The failed events of this deployment, oldest first."""
        lines: list[str] = []
        pages = self.cloudformation.get_paginator("describe_stack_events").paginate(
            StackName=self.name
        )
        for page in pages:
            for event in page["StackEvents"]:  # newest first
                if event["Timestamp"] < since:
                    return lines[::-1]
                if event.get("ResourceStatus", "").endswith("_FAILED"):
                    lines.append(
                        f"  {event['LogicalResourceId']} ({event['ResourceType']}): "
                        f"{event['ResourceStatus']}: {event.get('ResourceStatusReason', '')}"
                    )
        return lines[::-1]

    def described(self) -> StackTypeDef:
        """The stack as it is now (it must exist)."""
        [stack] = self.cloudformation.describe_stacks(StackName=self.name)["Stacks"]
        return stack

    def outputs(self) -> dict[str, str]:
        return _outputs(self.described())


def deploy(args: argparse.Namespace, clients: Clients, environ: Mapping[str, str]) -> int:
    """Upload, then deploy the stack; prints the outputs. Returns the exit status."""
    directory: Path = args.package_dir or stage_package_dir(args.stage)
    template = load_package(directory, args.stage)
    values = parameters(template, args.stage, environ, args.parameter)
    if ISSUER in values:
        values[ISSUER] = issuer_url(values[ISSUER], "Issuer")
    given_role = args.role_arn or environ.get("DEPLOY_ROLE_ARN")
    role_arn = service_role(given_role) if given_role else None
    name = stack_name(args.stage)
    stack = Stack(clients.cloudformation, name, args.poll_seconds, role_arn)
    existing = stack.current()
    if ISSUER not in values and existing is not None and not _parameter(existing, ISSUER):
        # A stack deployed before the parameter, or whose first deploy stopped halfway.
        values[ISSUER] = _endpoint_issuer(existing)
        print(f"Issuer: {values[ISSUER]} (the stack's {ENDPOINT_OUTPUT})")
    # A first deploy with none given: the second step sets it from the new stack's URL.
    second_step = existing is None and ISSUER not in values
    account = clients.sts.get_caller_identity()["Account"]
    named = environ.get("DEPLOY_BUCKET")
    bucket = named or f"gatehouse-artifacts-{account}-{clients.region}"
    ensure_bucket(clients, bucket, account, create=not named)
    uploader = Uploader(clients, bucket, account, prefix=name)
    packaged = rewrite_artifacts(template, directory, uploader.put_file)
    (directory / "packaged.json").write_text(json.dumps(packaged, indent=2), encoding="utf-8")
    acting = f", CloudFormation acting as {role_arn}" if role_arn else ""
    print(f"deploying stack {name} in {clients.region} (artifacts in s3://{bucket}{acting})")
    location, allowed = template_location(packaged, uploader), capabilities(packaged)
    try:
        changed = stack.deploy(location, values, allowed, existing)
        if second_step:
            created = stack.described()
            issuer = _endpoint_issuer(created)
            print(
                f"setting Issuer to the new stack's {ENDPOINT_OUTPUT}, {issuer} (for a custom "
                "domain, deploy again with PARAM_Issuer=https://<domain>)"
            )
            stack.deploy(location, {**values, ISSUER: issuer}, allowed, created)
    except DeployFailed as failure:
        print(f"error: {failure}", file=sys.stderr)
        return 1
    print("deployed" if changed else "no changes: the stack is up to date")
    for key, value in sorted(stack.outputs().items()):
        print(f"{key}: {value}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    top.add_argument("--stage", required=True, choices=["dev", "prod"])
    top.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="Name=value",
        help="a stack parameter (repeatable; wins over PARAM_<Name> in the environment)",
    )
    top.add_argument("--package-dir", type=Path, help="default .local/package-<stage>")
    top.add_argument(
        "--role-arn",
        help="the CloudFormation service role the change sets run as (default DEPLOY_ROLE_ARN)",
    )
    top.add_argument("--poll-seconds", type=float, default=10.0, help=argparse.SUPPRESS)
    return top


def main(argv: list[str] | None = None, clients: Clients | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return deploy(args, clients or Clients.from_session(boto3.Session()), os.environ)
    except (DeployError, ClientError, BotoCoreError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
