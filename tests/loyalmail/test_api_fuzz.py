"""The JSON API fuzzed by schemathesis against the app's own OpenAPI schema.

The whole app is served over real HTTP (uvicorn on 127.0.0.1) on the test database of each
engine, with a merchant seeded with a row of every kind an id in a path names, and
schemathesis's own runner (``schemathesis run``, the command a larger run uses too) tests
every operation as that merchant's integration (a Bearer API token; the operator API with
the operator token). Path parameters are drawn from the seeded real ids most of the time
(schemathesis dictionaries, :func:`schemathesis_config`), so the code behind the ids is
reached, and the test asserts it was: every operation with ids answered something other
than a 404 to real ids at least once (``fuzz_hooks`` logs every answer).

* examples and coverage phases: the schema's examples, then every boundary and every kind of
  invalid value of each parameter and body (negative cases);
* fuzzing: random valid (positive) and invalid (negative) requests;
* stateful: chains of calls that follow the links schemathesis infers from the responses
  (a created customer's id into ``GET /api/customers/{customer_id}``, and so on).

Each response must not be a 5xx, must have a documented status code, content type, headers
and body schema, and invalid input must be refused with a 4xx (``fuzz_hooks`` drops only the
"invalid" bodies schemathesis builds that the schema in fact accepts). The seed is fixed;
the number of examples per operation is ``LOYALMAIL_FUZZ_EXAMPLES`` (small by default, for
CI) and the README shows the larger run.
"""

from __future__ import annotations

import json
import os
import re
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from piccolo.engine.base import Engine

from loyalmail import database
from tests.conftest import TEST_DATABASE_URL, jobs_go_nowhere, make_merchant
from tests.settings_env import settings_env

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("LOYALMAIL_FUZZ_EXAMPLES", "5"))
#: Scenarios (chains of linked calls) of the stateful phase: cheap, so more than the examples.
SCENARIOS = int(os.environ.get("LOYALMAIL_FUZZ_SCENARIOS", str(max(30, EXAMPLES))))
SEED = int(os.environ.get("LOYALMAIL_FUZZ_SEED", "20261207"))
ALL_PHASES = "examples,coverage,fuzzing,stateful"
#: How often a path parameter is one of the seeded shop's real ids (the rest stays random).
REAL_IDS = 0.8
#: The operations that delete what their path names: they get ids of rows of their own.
DELETING = (
    "/api/tokens/{token_id}",
    "/api/sending-domains/{domain_id}",
    "/api/customers/{customer_id}",
    "/api/segments/{segment_id}",
    "/api/campaigns/{campaign_id}",
)
#: Customers seeded (see seed_data: the low ids are for the erasing operations).
CUSTOMERS = 25
#: The operator API's token for the run (set for the served app by the test).
OPERATOR_TOKEN = "fuzz-operator-token-0123456789abcdef"
#: Operations with ids in their path that cannot answer anything but 404 to this run, and why.
ONLY_404: dict[str, str] = {}
#: The checks the run asserts. Left out: positive_data_acceptance (valid by the schema is not
#: always acceptable: a duplicate address is a 409, a send beyond the quota too), and the
#: checks that need a second identity or other methods to mean anything (ignored_auth,
#: object_level_authorization, missing_required_header, unsupported_method): tenant
#: isolation is a suite of its own.
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "use_after_free",
    "ensure_resource_availability",
]


def phases(engine: str) -> str:
    """Every phase on the engine production runs (PostgreSQL when the suite has it); the
    coverage phase (every boundary and invalid value of every parameter: most of the run's
    requests) only there, to keep CI within its minutes. ``LOYALMAIL_FUZZ_PHASES`` overrides."""
    chosen = os.environ.get("LOYALMAIL_FUZZ_PHASES", "")
    if chosen:
        return chosen
    if engine == "sqlite" and TEST_DATABASE_URL:
        return "examples,fuzzing,stateful"
    return ALL_PHASES


class Server:
    """The app on a free port of 127.0.0.1, in a thread of this process: it shares the test's
    bound database engine, with a connection pool on the server's own event loop as
    ``loyalmail serve`` has (the engine keeps one pool per loop)."""

    def __init__(self) -> None:
        from loyalmail.app import create_app

        # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets that say so; without it each
        # response waited 40 ms for the delayed ACK of its headers (Nagle).
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        config = uvicorn.Config(
            create_app(use_pool=True), log_level="warning", lifespan="on", loop="asyncio"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the fuzzed app did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.socket.close()


@dataclass
class Seeded:
    """The seeded shop's real ids, by the name of the path parameter that takes them.

    ``kept`` rows are for every operation; ``doomed`` ones only for the operations that
    delete (a kept campaign deleted early would leave every later operation a 404 again).
    """

    kept: dict[str, list[int | str]] = field(default_factory=dict)
    doomed: dict[str, list[int | str]] = field(default_factory=dict)


def seed_data(url: str, token: str, slug: str) -> Seeded:
    """Through the API itself: customers with a purchase, saved segments, draft campaigns, a
    scheduled one, sending domains, an import job and a spare token, so that ids in paths
    reach real rows and not only 404s.

    The first and the last row of each kind are for the deleting operations: on a fresh
    database the first one's id is 1, the id the coverage phase (which draws nothing from the
    dictionaries) tries, deleting whatever row has it before the other phases come; the last
    one is left for those."""
    seeded = Seeded(kept={"slug": [slug]})
    # A long timeout: on a busy machine the first requests (a cold app) can take seconds.
    bearer = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=bearer, timeout=120) as api:

        def post(path: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
            answer = api.post(path, json=body)
            assert answer.status_code == status, (path, answer.text)
            result: dict[str, Any] = answer.json()
            return result

        def keep(name: str, row: dict[str, Any], doomed: bool = False) -> int:
            (seeded.doomed if doomed else seeded.kept).setdefault(name, []).append(row["id"])
            return int(row["id"])

        # Customers are erased by id, and the fuzzing phase's random ids are mostly small:
        # in one CI run ids 1 to 5 were all erased before the customer insights were asked
        # for (a 404 only). So the first ten and the last are the doomed ones, the kept ones
        # sit above the ids random draws favour.
        for n in range(CUSTOMERS):
            customer = {
                "email": f"fuzz-{n}@example.com",
                "first_name": f"Fuzz {n}",
                "customer_type": "loyal",
                "send_optin": False,
            }
            doomed = n < 10 or n == CUSTOMERS - 1
            customer_id = keep("customer_id", post("/api/customers", customer), doomed=doomed)
            post(f"/api/customers/{customer_id}/purchases", {"amount": "12.50"})
        for n in range(3):
            segment = {
                "name": f"Fuzz group {n}",
                "definition": {
                    "type": "group",
                    "match": "all",
                    "conditions": [
                        {"type": "customer_type", "op": "in", "values": ["loyal", "member"]}
                    ],
                },
            }
            keep("segment_id", post("/api/segments", segment), doomed=n in (0, 2))
        segment_id = seeded.kept["segment_id"][0]
        for n in range(6):
            campaign = {
                "name": f"Fuzz {n}",
                "subject": "Hello",
                "audience": {"segment_id": segment_id},
            }
            campaign_id = keep("campaign_id", post("/api/campaigns", campaign), doomed=n in (0, 5))
            if n == 4:
                # One already scheduled: unschedule, pause and cancel find one in that state.
                at = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
                post(f"/api/campaigns/{campaign_id}/schedule", {"at": at}, 200)
        for n in range(3):
            domain = {"domain": f"fuzz{n}.example.com"}
            keep("domain_id", post("/api/sending-domains", domain), doomed=n in (0, 2))
        for n in range(2):
            keep("token_id", post("/api/tokens", {"name": f"spare {n}"}), doomed=True)
        upload = api.post(
            "/api/imports",
            files={"file": ("fuzz.csv", b"email,first_name\r\nimport@example.com,Ina\r\n")},
        )
        assert upload.status_code == 202, upload.text
        keep("job_id", upload.json())
        predefined = api.get("/api/segments/predefined").json()
        seeded.kept["key"] = [segment["key"] for segment in predefined]
    return seeded


def schemathesis_config(seeded: Seeded, token: str, operator_token: str) -> str:
    """The run's configuration: the stateful phase's size, the two identities, and every path
    parameter drawn from the seeded shop's real ids most of the time (the rest stays random,
    so unknown and malformed ids are still tried)."""
    lines = [
        "[phases.stateful.generation]",
        f"max-examples = {SCENARIOS}",
        "",
        "[headers]",
        f'Authorization = "Bearer {token}"',
        "",
    ]
    for kind, ids in (("kept", seeded.kept), ("doomed", seeded.doomed)):
        for name, values in ids.items():
            lines += [f"[dictionaries.{name}_{kind}]", f"values = {json.dumps(values)}", ""]

    def bindings(kind: str, ids: dict[str, list[int | str]]) -> list[str]:
        return [
            f'"path.{name}" = {{ dictionary = "{name}_{kind}", probability = {REAL_IDS} }}'
            for name in ids
        ]

    lines += ["[parameters]", *bindings("kept", seeded.kept), ""]
    for path in DELETING:
        lines += [
            "[[operations]]",
            f'include-name = "DELETE {path}"',
            f"parameters = {{ {', '.join(bindings('doomed', seeded.doomed))} }}",
            "",
        ]
    lines += [
        "[[operations]]",
        'include-path-regex = "^/api/operator/"',
        f'headers = {{ Authorization = "Bearer {operator_token}" }}',
        "",
    ]
    return "\n".join(lines)


@pytest.fixture
def served(db: Engine, smtp: Path) -> Iterator[Server]:
    # With the SMTP catcher up, /health answers 200 (its 503 is for a part that is down);
    # with an operator token the operator API answers (without one it is a 404), and
    # so do the bounce webhooks with a secret (their signature check, not a 404).
    secrets = {
        "LOYALMAIL_OPERATOR_TOKEN": OPERATOR_TOKEN,
        "LOYALMAIL_BOUNCE_WEBHOOK_SECRET": "x" * 32,
    }
    with settings_env(secrets), Server() as server:
        yield server


@pytest.fixture
async def marketer(db: Engine) -> tuple[str, str]:
    """The fuzzed shop's slug and its integration's token (not the shop's first token: see
    :func:`seed_data`)."""
    from accounts import services as accounts

    merchant = await make_merchant()
    await accounts.create_api_token(merchant.id, "first")
    return merchant.slug, (await accounts.create_api_token(merchant.id, "fuzz")).token


def schemathesis_command(url: str, engine: str, config: Path, reports: Path) -> list[str]:
    return [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(config),
        "run",
        f"{url}/schema/openapi.json",
        "--url",
        url,
        "--checks",
        ",".join(CHECKS),
        "--mode",
        "all",
        "--phases",
        phases(engine),
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
        "--report",
        "junit",
        "--report-junit-path",
        str(reports / "junit.xml"),
        "--no-color",
    ]


def answers_to_real_ids(log: Path, seeded: Seeded) -> dict[str, set[int]]:
    """The status codes each operation answered when every id in its path was a seeded one,
    from the hooks' log (``fuzz_hooks``)."""
    real = {
        (name, value)
        for ids in (seeded.kept, seeded.doomed)
        for name, values in ids.items()
        for value in values
    }
    answers: dict[str, set[int]] = {}
    for line in log.read_text().splitlines():
        label, status, path, _seconds = json.loads(line)
        if all((name, value) in real for name, value in path.items()):
            answers.setdefault(label, set()).add(status)
    return answers


def test_the_api_survives_schemathesis(
    served: Server, marketer: tuple[str, str], db: Engine, tmp_path: Path
) -> None:
    engine = "postgres" if database.is_postgres(db) else "sqlite"
    slug, token = marketer
    seeded = seed_data(served.url, token, slug)
    config = tmp_path / "schemathesis.toml"
    config.write_text(schemathesis_config(seeded, token, OPERATOR_TOKEN))
    command = schemathesis_command(served.url, engine, config, tmp_path)
    log = tmp_path / "answers.jsonl"
    hooks = {
        "SCHEMATHESIS_HOOKS": "tests.loyalmail.fuzz_hooks",
        "PYTHONPATH": str(ROOT),
        "LOYALMAIL_FUZZ_ANSWERS": str(log),
        "LOYALMAIL_FUZZ_FAILURES": str(tmp_path / "failures.jsonl"),
    }
    # The sends and test sends the fuzzer starts stay on record, but no worker runs them
    # behind the tests that come after this one.
    started = time.monotonic()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with jobs_go_nowhere():
        run = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=3 * 3600,
            env={**os.environ, **hooks},
            cwd=tmp_path,
        )
    seconds = time.monotonic() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # schemathesis's own CPU time: on a busy machine a fairer measure of the run's size.
    cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    output = run.stdout + run.stderr
    print(output)  # shown with -s or on failure: the phases, their times and any failure
    assert run.returncode == 0, output[-20000:]
    # Not a vacuous pass: the whole schema was loaded and every operation tested, none errored.
    schema = httpx.get(f"{served.url}/schema/openapi.json", timeout=120).json()
    operations = {
        f"{method.upper()} {path}": [
            p["name"] for p in item.get("parameters", []) if p["in"] == "path"
        ]
        for path, methods in schema["paths"].items()
        for method, item in methods.items()
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert len(operations) > 60
    assert f"Tested: {len(operations)}" in output, output[-5000:]
    report = (tmp_path / "junit.xml").read_text()
    assert 'errors="0"' in report and 'failures="0"' in report, report[-5000:]
    if "stateful" in phases(engine):
        scenarios = re.search(r"Scenarios:\s+(\d+)", output)
        assert scenarios and int(scenarios.group(1)) > 0, output[-5000:]
    # The code behind the ids was reached: every operation answered something else than 404
    # at least once to a request with real ids (the row was found), unless it cannot.
    answers = answers_to_real_ids(log, seeded)
    reached = sorted(label for label, codes in answers.items() if codes - {404})
    cases = re.search(r"(\d+) generated", output)
    print(
        f"{engine}: {len(reached)} of {len(operations)} operations answered beyond 404; "
        f"{cases.group(1) if cases else '?'} cases; {seconds:.0f} s ({cpu:.0f} s CPU); "
        f"examples per operation {EXAMPLES}; phases {phases(engine)}"
    )
    with_ids = {label for label, names in operations.items() if names}
    unreached = sorted(with_ids - set(reached) - set(ONLY_404))
    assert not unreached, (unreached, {label: answers.get(label) for label in unreached})
