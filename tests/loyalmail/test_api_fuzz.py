"""The JSON API fuzzed by schemathesis against the app's own OpenAPI schema.

The whole app is served over real HTTP (uvicorn on 127.0.0.1) on the test database of each
engine, with a merchant that has customers, a saved segment and a draft campaign, and
schemathesis's own runner (``schemathesis run``, the command a larger run uses too) tests
every operation as that merchant's integration (a Bearer API token):

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

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from piccolo.engine.base import Engine

from loyalmail import database
from tests.conftest import TEST_DATABASE_URL, jobs_go_nowhere, make_merchant

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("LOYALMAIL_FUZZ_EXAMPLES", "5"))
#: Scenarios (chains of linked calls) of the stateful phase: cheap, so more than the examples.
SCENARIOS = int(os.environ.get("LOYALMAIL_FUZZ_SCENARIOS", str(max(30, EXAMPLES))))
SEED = int(os.environ.get("LOYALMAIL_FUZZ_SEED", "20261207"))
ALL_PHASES = "examples,coverage,fuzzing,stateful"
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


def seed_data(url: str, token: str) -> dict[str, int]:
    """Through the API itself: customers, a purchase, a saved segment and a draft campaign, so
    that ids in paths reach real rows and not only 404s."""
    ids: dict[str, int] = {}
    with httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}) as api:

        def post(path: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
            answer = api.post(path, json=body)
            assert answer.status_code == status, (path, answer.text)
            result: dict[str, Any] = answer.json()
            return result

        for n in range(3):
            customer = post(
                "/api/customers",
                {
                    "email": f"fuzz-{n}@example.com",
                    "first_name": f"Fuzz {n}",
                    "customer_type": "loyal",
                    "send_optin": False,
                },
            )
            ids.setdefault("customer_id", customer["id"])
        post(f"/api/customers/{ids['customer_id']}/purchases", {"amount": "12.50"})
        segment = post(
            "/api/segments",
            {
                "name": "Fuzz group",
                "definition": {
                    "type": "group",
                    "match": "all",
                    "conditions": [
                        {"type": "customer_type", "op": "in", "values": ["loyal", "member"]}
                    ],
                },
            },
        )
        ids["segment_id"] = segment["id"]
        campaign = post(
            "/api/campaigns",
            {"name": "Fuzz", "subject": "Hello", "audience": {"segment_id": segment["id"]}},
        )
        ids["campaign_id"] = campaign["id"]
    return ids


@pytest.fixture
def served(db: Engine, smtp: Path) -> Iterator[Server]:
    # With the SMTP catcher up, /health answers 200 (its 503 is for a part that is down).
    with Server() as server:
        yield server


@pytest.fixture
async def marketer_token(db: Engine) -> str:
    from accounts import services as accounts

    merchant = await make_merchant()
    return (await accounts.create_api_token(merchant.id, "fuzz")).token


def schemathesis_command(url: str, token: str, engine: str, reports: Path) -> list[str]:
    config = reports / "schemathesis.toml"
    config.write_text(f"[phases.stateful.generation]\nmax-examples = {SCENARIOS}\n")
    return [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(config),
        "run",
        f"{url}/schema/openapi.json",
        "--url",
        url,
        "--header",
        f"Authorization: Bearer {token}",
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


def test_the_api_survives_schemathesis(
    served: Server, marketer_token: str, db: Engine, tmp_path: Path
) -> None:
    engine = "postgres" if database.is_postgres(db) else "sqlite"
    seed_data(served.url, marketer_token)
    command = schemathesis_command(served.url, marketer_token, engine, tmp_path)
    hooks = {"SCHEMATHESIS_HOOKS": "tests.loyalmail.fuzz_hooks", "PYTHONPATH": str(ROOT)}
    # The sends and test sends the fuzzer starts stay on record, but no worker runs them
    # behind the tests that come after this one.
    with jobs_go_nowhere():
        run = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=1800,
            env={**os.environ, **hooks},
            cwd=tmp_path,
        )
    output = run.stdout + run.stderr
    print(output)  # shown with -s or on failure: the phases, their times and any failure
    assert run.returncode == 0, output[-20000:]
    # Not a vacuous pass: the whole schema was loaded and every operation tested, none errored.
    operations = len(
        [
            method
            for path in httpx.get(f"{served.url}/schema/openapi.json").json()["paths"].values()
            for method in path
            if method in ("get", "post", "put", "patch", "delete")
        ]
    )
    assert operations > 60
    assert f"Tested: {operations}" in output, output[-5000:]
    report = (tmp_path / "junit.xml").read_text()
    assert 'errors="0"' in report and 'failures="0"' in report, report[-5000:]
    if "stateful" in phases(engine):
        scenarios = re.search(r"Scenarios:\s+(\d+)", output)
        assert scenarios and int(scenarios.group(1)) > 0, output[-5000:]
