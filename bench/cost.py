"""What 1,000 operations cost deployed, from this run's measurements and list prices.

Nothing here is a stored answer: the inputs are each operation's measured CPU time in
this process (``Paired.subject_cpu``, median), its recorded DynamoDB calls (operation and
parameters), the Lambda memory size in ``.chalice/config.json``, and the prices below.

The model:
- Lambda duration = measured CPU / the vCPU share Lambda gives that memory (a full vCPU
  at 1,769 MB, proportionally less below) + one in-region DynamoDB round trip
  (``DYNAMODB_CALL_MS``, an assumption: DynamoDB Local on loopback is not AWS) per call;
  billed per invocation, rounded up to 1 ms. A guarded request is two invocations (the
  authorizer and the route: API Gateway's authorizer cache is off).
- DynamoDB units from each recorded call's parameters, by the published rules: a strongly
  consistent read of an item up to 4 KB is 1 read unit (0.5 eventually consistent), a
  write up to 1 KB is 1 write unit, and every action of a transaction costs double.
- API Gateway REST: one request per operation.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from typing import Any

from bench import PROJECT_DIR
from bench.report import Measured, Report
from bench.roundtrips import Calls

#: us-east-1 list prices (USD), docs/operations/costs.md; check current prices.
LAMBDA_PER_GB_SECOND = 0.0000166667
LAMBDA_PER_REQUEST = 0.20 / 1e6
API_GATEWAY_PER_REQUEST = 3.50 / 1e6
DYNAMODB_PER_WRITE_UNIT = 0.625 / 1e6
DYNAMODB_PER_READ_UNIT = 0.125 / 1e6
#: Lambda gives one full vCPU at this memory size, and a proportional share below it.
FULL_VCPU_MB = 1769
#: Assumed in-region DynamoDB latency per call, as the Lambda waits for it.
DYNAMODB_CALL_MS = 5.0
KB = 1024


@dataclass(frozen=True)
class Operation:
    key: str
    label: str
    invocations: int


OPERATIONS = (
    Operation("login", "logins", 1),
    Operation("refresh", "refreshes", 1),
    Operation("protected", "authorized requests (GET /protected)", 2),
)


def lambda_memory_mb() -> int:
    """The deployed functions' memory, as ``chalice deploy`` sets it."""
    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
    return int(config["lambda_memory_size"])


def _write_units(item_bytes: int) -> int:
    return max(1, math.ceil(item_bytes / KB))


def _item_bytes(action: dict[str, Any]) -> int:
    """A written item's size (names and values, as DynamoDB counts it, near enough);
    for an update, delete or check, the item is not in the call: take one unit's worth."""
    item = action.get("Item")
    if item is None:
        return KB
    return sum(len(name) + len(json.dumps(value)) for name, value in item.items())


def units(calls: Calls) -> tuple[float, float]:
    """(read units, write units) the recorded calls cost on demand."""
    reads = writes = 0.0
    for operation, params in calls.params:
        per_read = 1.0 if params.get("ConsistentRead") else 0.5
        if operation in ("GetItem", "Query"):
            reads += per_read
        elif operation == "BatchGetItem":
            for request in params["RequestItems"].values():
                reads += len(request["Keys"]) * (1.0 if request.get("ConsistentRead") else 0.5)
        elif operation == "TransactWriteItems":
            for action in params["TransactItems"]:
                (body,) = action.values()
                writes += 2 * _write_units(_item_bytes(body))
        elif operation in ("PutItem", "UpdateItem", "DeleteItem"):
            writes += _write_units(_item_bytes(params))
        elif operation == "BatchWriteItem":
            writes += sum(len(requests) for requests in params["RequestItems"].values())
    return reads, writes


@dataclass(frozen=True)
class Cost:
    operation: Operation
    cpu_ms: float
    calls: int
    duration_ms: float
    reads: float
    writes: float
    memory_mb: int

    @property
    def billed_ms(self) -> int:
        """Each invocation rounds up to a whole millisecond."""
        return math.ceil(self.duration_ms) + self.operation.invocations - 1

    @property
    def lambda_usd(self) -> float:
        gb_seconds = self.memory_mb / 1024 * self.billed_ms / 1000
        return gb_seconds * LAMBDA_PER_GB_SECOND + self.operation.invocations * LAMBDA_PER_REQUEST

    @property
    def dynamodb_usd(self) -> float:
        return self.reads * DYNAMODB_PER_READ_UNIT + self.writes * DYNAMODB_PER_WRITE_UNIT

    @property
    def total_usd(self) -> float:
        return self.lambda_usd + API_GATEWAY_PER_REQUEST + self.dynamodb_usd


def cost_of(operation: Operation, measured: Measured, memory_mb: int) -> Cost:
    cpu_ms = statistics.median(measured.paired.subject_cpu) * 1000
    share = min(1.0, memory_mb / FULL_VCPU_MB)
    reads, writes = units(measured.calls)
    return Cost(
        operation=operation,
        cpu_ms=cpu_ms,
        calls=measured.calls.count,
        duration_ms=cpu_ms / share + measured.calls.count * DYNAMODB_CALL_MS,
        reads=reads,
        writes=writes,
        memory_mb=memory_mb,
    )


def add(report: Report) -> list[Cost]:
    """The cost table, as a section of the report; the costs, for the terminal."""
    memory = lambda_memory_mb()
    costs = [cost_of(op, report.measured[op.key], memory) for op in OPERATIONS]
    rows = [
        f"| {c.operation.label} | {c.cpu_ms:.1f} ms CPU -> {c.duration_ms:.0f} ms "
        f"x {c.operation.invocations} invocation(s) | ${c.lambda_usd * 1000:.4f} | "
        f"${API_GATEWAY_PER_REQUEST * 1000:.4f} | {c.reads:g} R + {c.writes:g} W units: "
        f"${c.dynamodb_usd * 1000:.4f} | **${c.total_usd * 1000:.4f}** |"
        for c in costs
    ]
    report.sections.append(
        "\n".join(
            [
                "## Cost per 1,000 operations (model)",
                "",
                f"Built from this run (bench/cost.py): each operation's median CPU time in "
                f"the bench process, scaled to the vCPU share of a {memory} MB Lambda "
                f"({min(1.0, memory / FULL_VCPU_MB):.2f} of one vCPU, full at "
                f"{FULL_VCPU_MB} MB), plus {DYNAMODB_CALL_MS:g} ms per DynamoDB call (assumed "
                f"in-region latency); DynamoDB units from the recorded calls' parameters "
                f"(strongly consistent reads 1 unit per 4 KB, writes 1 per KB, transactions "
                f"double); us-east-1 list prices: Lambda ${LAMBDA_PER_GB_SECOND:.10f} per "
                f"GB-second and ${LAMBDA_PER_REQUEST * 1e6:.2f} per million invocations, API "
                f"Gateway REST ${API_GATEWAY_PER_REQUEST * 1e6:.2f} per million, DynamoDB "
                f"on demand ${DYNAMODB_PER_WRITE_UNIT * 1e6:.3f} per million write and "
                f"${DYNAMODB_PER_READ_UNIT * 1e6:.3f} per million read units. The bench "
                f"process's CPU includes Chalice's local gateway imitation, so Lambda's "
                f"share is slightly overstated.",
                "",
                "| per 1,000 | Lambda duration (model) | Lambda | API Gateway | DynamoDB | total |",
                "| --- | --- | --- | --- | --- | --- |",
                *rows,
            ]
        )
    )
    return costs
