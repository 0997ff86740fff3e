"""The published API description cannot drift from the code.

Every endpoint is called for its success and for each error the description documents, and the
real answer must have a documented status and a body that validates against that status's
schema (JSON Schema 2020-12, OpenAPI 3.1's dialect). Every documented answer must be reached by
some case here, every URL under /api/ must be described, and each endpoint's methods must be
exactly the ones it takes. alice owns, bob is the stranger.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.conf import settings
from django.db import DatabaseError
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi

from chirp.models import ApiToken
from chirp.openapi import DOCUMENT, PATHS, resolve_response
from imports.models import Channel, Follow, ImportJob, ListBatch, ListBatchRow
from tests.uploads.conftest import make_job

PAGE_URL = "http://127.0.0.1:8123/gallery"
NOT_ENDPOINTS = {"/api/docs/": "the HTML page that shows this description"}
METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # as documented
    status: int
    # alice (token), bob (token), anonymous, expired, session (no CSRF), or alice when the
    # database fails under her request ("failing": the server's 500)
    caller: str = "alice"
    url: str = ""  # the documented path with the world's ids: "/api/scrape-jobs/{finished}"
    body: Any = None  # an object is sent as JSON, a str as a raw JSON body
    # A body over the limit, sent to the real ASGI app (the limit lives in front of Django,
    # where the test client never goes): "declared" in Content-Length, or "chunked" (no length).
    oversized: str = ""

    def __str__(self) -> str:
        sent = f" ({self.oversized} body over the limit)" if self.oversized else ""
        return f"{self.method} {self.url or self.path} {self.status} as {self.caller}{sent}"


JOBS, JOB, RETRY = "/api/scrape-jobs", "/api/scrape-jobs/{id}", "/api/scrape-jobs/{id}/retry"
IMPORTS, IMPORT = "/api/channels/import", "/api/channels/import/{id}"
CHANNEL_JOBS, ACTIVE = "/api/channels/{id}/jobs", "/api/channels/{id}/jobs/active"
STATS, DESCRIPTION = "/api/channels/{id}/stats", "/api/openapi.json"
LISTS, BATCH = "/api/channels/lists", "/api/channels/lists/{id}"
FOLLOW, FOLLOW_URL = "/api/channels/{id}/follow", "/api/channels/{channel}/follow"
FINISHED, RUNNING = "/api/scrape-jobs/{finished}", "/api/scrape-jobs/{running}"

CASES = [
    Case("GET", JOBS, 200),
    Case("GET", JOBS, 400, url=JOBS + "?page=first"),
    Case("GET", JOBS, 401, "anonymous"),
    Case("GET", JOBS, 401, "expired"),
    Case("POST", JOBS, 202, body={"url": PAGE_URL}),
    Case("POST", JOBS, 400, body="[1, 2"),
    Case("POST", JOBS, 400, body=["not", "an", "object"]),
    Case("POST", JOBS, 400, body={"url": "javascript:alert(1)"}),
    Case("POST", JOBS, 400, body={"url": "http://10.0.0.7/"}),
    Case("POST", JOBS, 401, "anonymous", body={"url": PAGE_URL}),
    Case("POST", JOBS, 403, "session", body={"url": PAGE_URL}),
    Case("POST", JOBS, 413, oversized="declared"),
    Case("POST", JOBS, 413, "anonymous", oversized="chunked"),
    Case("GET", JOB, 200, url=FINISHED),
    Case("GET", JOB, 401, "anonymous", url=FINISHED),
    Case("GET", JOB, 404, "bob", url=FINISHED),
    Case("DELETE", JOB, 204, url=FINISHED),
    Case("DELETE", JOB, 401, "anonymous", url=FINISHED),
    Case("DELETE", JOB, 403, "session", url=FINISHED),
    Case("DELETE", JOB, 404, "bob", url=FINISHED),
    Case("DELETE", JOB, 409, url=RUNNING),
    Case("POST", RETRY, 202, url=FINISHED + "/retry"),
    Case("POST", RETRY, 401, "anonymous", url=FINISHED + "/retry"),
    Case("POST", RETRY, 403, "session", url=FINISHED + "/retry"),
    Case("POST", RETRY, 404, "bob", url=FINISHED + "/retry"),
    Case("POST", RETRY, 409, url=RUNNING + "/retry"),
    Case("POST", RETRY, 413, url=FINISHED + "/retry", oversized="declared"),
    Case("GET", IMPORTS, 200),
    Case("GET", IMPORTS, 401, "anonymous"),
    Case("GET", IMPORTS, 404, "bob"),
    Case("POST", IMPORTS, 201, body={"channelUrl": "@newchannel", "limit": 5, "onlyNew": True}),
    Case("POST", IMPORTS, 400, body="{nope"),
    Case("POST", IMPORTS, 400, body={}),
    Case("POST", IMPORTS, 400, body={"channelUrl": "https://example.com/@x"}),
    Case("POST", IMPORTS, 400, body={"channelUrl": "@newchannel", "limit": "many"}),
    Case("POST", IMPORTS, 400, body={"channelUrl": ["@a", "@b"]}),
    Case("POST", IMPORTS, 401, "anonymous", body={"channelUrl": "@newchannel"}),
    Case("POST", IMPORTS, 403, "session", body={"channelUrl": "@newchannel"}),
    Case("POST", IMPORTS, 409, body={"channelUrl": "youtube.com/@Fixture95"}),
    Case("POST", IMPORTS, 413, oversized="declared"),
    Case("POST", IMPORTS, 413, "session", oversized="chunked"),
    Case("GET", IMPORT, 200, url=IMPORTS + "/{listed}"),
    Case("GET", IMPORT, 200, url=IMPORTS + "/{unlisted}"),
    Case("GET", IMPORT, 401, "anonymous", url=IMPORTS + "/{listed}"),
    Case("GET", IMPORT, 404, "bob", url=IMPORTS + "/{listed}"),
    Case("GET", CHANNEL_JOBS, 200, url="/api/channels/{channel}/jobs?limit=1"),
    Case("GET", CHANNEL_JOBS, 200, url="/api/channels/{channel}/jobs?page=9"),
    Case("GET", CHANNEL_JOBS, 400, url="/api/channels/{channel}/jobs?limit=1000"),
    Case("GET", CHANNEL_JOBS, 401, "anonymous", url="/api/channels/{channel}/jobs"),
    Case("GET", CHANNEL_JOBS, 404, "bob", url="/api/channels/{channel}/jobs"),
    Case("GET", ACTIVE, 200, url="/api/channels/{channel}/jobs/active"),
    Case("GET", ACTIVE, 401, "anonymous", url="/api/channels/{channel}/jobs/active"),
    Case("GET", ACTIVE, 404, "bob", url="/api/channels/{channel}/jobs/active"),
    Case("GET", STATS, 200, url="/api/channels/{channel}/stats"),
    Case("GET", STATS, 401, "anonymous", url="/api/channels/{channel}/stats"),
    Case("GET", STATS, 404, "bob", url="/api/channels/{channel}/stats"),
    Case(
        "POST",
        LISTS,
        200,
        body={"dryRun": True, "channels": [{"name": "J", "channel_url": "@jj1"}]},
    ),
    Case("POST", LISTS, 400, body={"dryRun": True, "list": ""}),
    Case("POST", LISTS, 401, "anonymous", body={"dryRun": True, "channels": ["@jj1"]}),
    Case("POST", LISTS, 403, "session", body={"dryRun": True, "channels": ["@jj1"]}),
    Case("POST", LISTS, 201, body={"channels": ["@jj1"], "skipExisting": False, "limit": 5}),
    Case("POST", LISTS, 400, body={"channels": ["@jj1"], "limit": "five"}),
    Case("GET", BATCH, 200, url=LISTS + "/{batch}"),
    Case("GET", BATCH, 401, "anonymous", url=LISTS + "/{batch}"),
    Case("GET", BATCH, 404, "bob", url=LISTS + "/{batch}"),
    Case("POST", FOLLOW, 201, url=FOLLOW_URL, body={"quality": "720", "since": "2026-01-01"}),
    Case("POST", FOLLOW, 200, url="/api/channels/{followed}/follow", body={"quality": "best"}),
    Case("POST", FOLLOW, 400, url=FOLLOW_URL, body={"quality": "8k"}),
    Case("POST", FOLLOW, 400, url=FOLLOW_URL, body={"since": "someday"}),
    Case("POST", FOLLOW, 401, "anonymous", url=FOLLOW_URL, body={}),
    Case("POST", FOLLOW, 403, "session", url=FOLLOW_URL, body={}),
    Case("POST", FOLLOW, 404, "bob", url=FOLLOW_URL, body={}),
    Case("DELETE", FOLLOW, 200, url="/api/channels/{followed}/follow"),
    Case("DELETE", FOLLOW, 401, "anonymous", url="/api/channels/{followed}/follow"),
    Case("DELETE", FOLLOW, 403, "session", url="/api/channels/{followed}/follow"),
    Case("DELETE", FOLLOW, 404, url=FOLLOW_URL),  # not followed
    Case("DELETE", FOLLOW, 404, "bob", url="/api/channels/{followed}/follow"),
    Case("GET", DESCRIPTION, 200),
    Case("GET", DESCRIPTION, 401, "anonymous"),
    *(
        Case(method, path, 500, "failing", url=url, body=body)
        for method, path, url, body in [
            ("GET", JOBS, "", None),
            ("POST", JOBS, "", {"url": PAGE_URL}),
            ("GET", JOB, FINISHED, None),
            ("DELETE", JOB, FINISHED, None),
            ("POST", RETRY, FINISHED + "/retry", None),
            ("GET", IMPORTS, "", None),
            ("POST", IMPORTS, "", {"channelUrl": "@newchannel"}),
            ("GET", IMPORT, IMPORTS + "/{listed}", None),
            ("GET", CHANNEL_JOBS, "/api/channels/{channel}/jobs", None),
            ("GET", ACTIVE, "/api/channels/{channel}/jobs/active", None),
            ("GET", STATS, "/api/channels/{channel}/stats", None),
            ("POST", LISTS, "", {"dryRun": True, "channels": ["@jj1"]}),
            ("GET", BATCH, LISTS + "/{batch}", None),
            ("POST", FOLLOW, FOLLOW_URL, {"quality": "720"}),
            ("DELETE", FOLLOW, "/api/channels/{followed}/follow", None),
            ("GET", DESCRIPTION, "", None),
        ]
    ),
]


def _key_for(user, **fields) -> str:
    token = ApiToken(user=user, name="script", **fields)
    key = token.set_new_key()
    token.save()
    return key


@pytest.fixture
def world(alice, bob) -> SimpleNamespace:
    """alice's jobs and channel, and a client for each kind of caller."""
    finished = make_job(alice, ["completed", "failed"], status="completed")
    running = make_job(
        alice, ["queued"], status="processing", worker="host:1:abc", heartbeat=timezone.now()
    )
    channel = Channel.objects.create(
        youtube_id="UC0000000000000000000001", handle="@listed", title="Listed"
    )
    listed = ImportJob.objects.create(
        owner=alice,
        channel=channel,
        channel_url=channel.youtube_url,
        status="completed",
        total=3,
        done=3,
        prepared=True,
        finished=timezone.now(),
    )
    ImportJob.objects.create(
        owner=alice, channel=channel, channel_url=channel.youtube_url, status="enriching"
    )
    # An import whose listing has not named its channel yet (channelId/channelTitle null).
    unlisted = ImportJob.objects.create(
        owner=alice, channel_url="https://www.youtube.com/@fixture95", status="pending"
    )
    # A second channel of alice's, which she follows.
    followed = Channel.objects.create(
        youtube_id="UC0000000000000000000002", handle="@followed", title="Followed"
    )
    ImportJob.objects.create(
        owner=alice, channel=followed, channel_url=followed.youtube_url, status="completed"
    )
    Follow.start(alice, followed)
    # A finished list batch of alice's: one row imported (the listed channel), one invalid.
    batch = ListBatch.objects.create(
        owner=alice,
        text="name,channel_url\nJ,@listed\nK,nope nope\n",
        format="csv",
        status="completed",
        total=2,
        done=1,
        skipped=1,
        prepared=True,
        started=timezone.now(),
        finished=timezone.now(),
    )
    ListBatchRow.objects.create(
        job=batch,
        number=2,
        outcome="new",
        channel_url=channel.youtube_url,
        input="@listed",
        name="J",
        status="completed",
        import_job=listed,
        channel=channel,
    )
    ListBatchRow.objects.create(
        job=batch, number=3, outcome="invalid", input="nope nope", status="skipped"
    )
    session = Client(enforce_csrf_checks=True)
    session.force_login(alice)
    expired = _key_for(alice, expires=timezone.now() - timedelta(days=1))
    return SimpleNamespace(
        ids={
            "finished": finished.pk,
            "running": running.pk,
            "channel": channel.pk,
            "listed": listed.pk,
            "unlisted": unlisted.pk,
            "followed": followed.pk,
            "batch": batch.pk,
        },
        clients={
            "alice": Client(HTTP_AUTHORIZATION=f"Bearer {_key_for(alice)}"),
            "bob": Client(HTTP_AUTHORIZATION=f"Bearer {_key_for(bob)}"),
            "anonymous": Client(),
            "expired": Client(HTTP_AUTHORIZATION=f"Bearer {expired}"),
            "session": session,
            # Django's own answer to an exception, not the test client's re-raising of it.
            "failing": Client(
                HTTP_AUTHORIZATION=f"Bearer {_key_for(alice)}", raise_request_exception=False
            ),
        },
    )


@dataclass
class AsgiAnswer:
    """What the ASGI app sent, read like a test client's response."""

    status_code: int
    headers: dict[str, str]
    content: bytes

    def __getitem__(self, name: str) -> str:
        return self.headers[name.lower()]

    def json(self) -> Any:
        return json.loads(self.content)


async def _asgi_post(path: str, headers: dict[str, str], chunks: list[bytes]) -> AsgiAnswer:
    """One POST through the real ASGI app (chirp/asgi.py: the body limit, then Django), as
    uvicorn would make it, without a server."""
    from chirp.asgi import application

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }
    pending = list(chunks)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if not pending:
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": pending.pop(0), "more_body": bool(pending)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await application(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    answer_headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return AsgiAnswer(start["status"], answer_headers, body)


def call_oversized(world: SimpleNamespace, case: Case, url: str) -> AsgiAnswer:
    from chirp.asgi import application

    headers = {"Host": "testserver", "Content-Type": "application/json"}
    if case.caller == "session":
        session = world.clients["session"].cookies[settings.SESSION_COOKIE_NAME].value
        headers["Cookie"] = f"{settings.SESSION_COOKIE_NAME}={session}"
    elif case.caller != "anonymous":
        headers["Authorization"] = world.clients[case.caller].defaults["HTTP_AUTHORIZATION"]
    piece = b" " * (1024 * 1024)  # JSON whitespace: a body that is only too big
    chunks = [piece] * (application.max_bytes // len(piece) + 1)
    if case.oversized == "declared":
        headers["Content-Length"] = str(len(piece) * len(chunks))
    return asyncio.run(_asgi_post(url, headers, chunks))


def call(world: SimpleNamespace, case: Case):
    client = world.clients[case.caller]
    url = (case.url or case.path).format(**world.ids)
    if case.oversized:
        return call_oversized(world, case, url)
    if case.body is None:
        return client.generic(case.method, url)
    data = case.body if isinstance(case.body, str) else json.dumps(case.body)
    return client.generic(case.method, url, data, content_type="application/json")


def schema_errors(instance: Any, schema: dict[str, Any]) -> list[str]:
    """Validate with the description's components in scope, checking date-time formats."""
    root = {**schema, "components": DOCUMENT["components"]}
    validator = Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message}"
        for error in validator.iter_errors(instance)
    ]


def documented_answers() -> set[tuple[str, str, int]]:
    return {
        (method.upper(), path, int(status))
        for path, item in PATHS.items()
        for method in METHODS
        if method in item
        for status in item[method]["responses"]
    }


def test_the_dates_are_really_checked():
    # Without rfc3339-validator, jsonschema would let any string pass as a date-time.
    assert "date-time" in Draft202012Validator.FORMAT_CHECKER.checkers
    assert schema_errors("yesterday", {"type": "string", "format": "date-time"})


def database_gone(token: ApiToken) -> None:
    raise DatabaseError("server closed the connection unexpectedly")


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES, ids=str)
def test_each_answer_is_documented_and_matches_its_schema(world, case, monkeypatch):
    if case.caller == "failing":
        # The database fails under the request (at the token's first write): an exception no
        # view catches, answered by Django's handler and JsonApiErrorsMiddleware.
        monkeypatch.setattr(ApiToken, "record_use", database_gone)
    response = call(world, case)

    assert response.status_code == case.status, response.content[:300]
    responses = PATHS[case.path][case.method.lower()]["responses"]
    assert str(response.status_code) in responses, "an answer the description does not list"
    documented = resolve_response(responses[str(response.status_code)])
    if "content" not in documented:
        assert response.content == b""
        return
    assert response["Content-Type"] == "application/json"
    schema = documented["content"]["application/json"]["schema"]
    assert schema_errors(response.json(), schema) == []


def test_every_documented_answer_is_exercised():
    assert documented_answers() == {(case.method, case.path, case.status) for case in CASES}


def _api_routes(resolver: URLResolver, prefix: str = "") -> list[str]:
    routes = []
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            routes += _api_routes(pattern, route)
        elif isinstance(pattern, URLPattern) and route.startswith("api/"):
            routes.append("/" + route)
    return routes


def _shape(path: str) -> str:
    """/api/channels/<int:pk>/jobs and /api/channels/{id}/jobs → /api/channels/{}/jobs"""
    return re.sub(r"<[^>]+>|\{[^}]+\}", "{}", path)


def test_every_url_under_api_is_described():
    routes = {_shape(route) for route in _api_routes(get_resolver())}

    assert routes - {_shape(path) for path in NOT_ENDPOINTS} == {_shape(p) for p in PATHS}


@pytest.mark.django_db
@pytest.mark.parametrize("path", PATHS)
def test_each_endpoint_takes_exactly_the_documented_methods(world, path):
    url = path.format(id=world.ids["finished"])

    response = world.clients["alice"].generic("TRACE", url)

    assert response.status_code == 405
    assert schema_errors(response.json(), {"$ref": "#/components/schemas/Error"}) == []
    documented = {method.upper() for method in METHODS if method in PATHS[path]}
    assert set(response["Allow"].split(", ")) == documented


def test_the_description_is_valid_openapi_3_1():
    validate_openapi(DOCUMENT)
    assert DOCUMENT["openapi"].startswith("3.1")


def _examples() -> list[tuple[str, Any, dict[str, Any]]]:
    found = []
    for path, item in PATHS.items():
        for method in METHODS:
            operation = item.get(method)
            if not operation:
                continue
            bodies = [
                ("request", operation.get("requestBody", {})),
                *operation["responses"].items(),
            ]
            for name, body in bodies:
                media = body.get("content", {}).get("application/json", {})
                if "example" in media:
                    found.append((f"{method} {path} {name}", media["example"], media["schema"]))
    return found


@pytest.mark.parametrize(("where", "example", "schema"), _examples(), ids=lambda v: str(v)[:60])
def test_the_examples_match_their_schemas(where, example, schema):
    assert schema_errors(example, schema) == [], where


@pytest.mark.django_db
def test_the_description_is_served_to_a_token_and_a_session(world):
    by_token = world.clients["alice"].get("/api/openapi.json")
    by_session = world.clients["session"].get("/api/openapi.json")

    assert by_token.status_code == by_session.status_code == 200
    assert by_token.json() == json.loads(json.dumps(DOCUMENT)) == by_session.json()


@pytest.mark.django_db
def test_the_docs_page_lists_every_endpoint_and_both_ways_to_sign_in(world):
    page = world.clients["session"].get("/api/docs/")

    assert page.status_code == 200
    text = page.content.decode()
    for method, path, status in documented_answers():
        assert f'>{method}</span> <span class="mono">{path}</span>' in text
        assert f">{status}</span>" in text
    assert "Authorization: Bearer &lt;key&gt;" in text
    assert "X-CSRFToken" in text
    assert "total_images" in text and "totalPages" in text and "jobId" in text
    assert "001_74680695b060749f" in text and "002_d1827b7b0ef1a774" in text
    assert "<script" not in text.split("</head>", 1)[1]  # nothing inline (CSP)
    assert 'style="' not in text


@pytest.mark.django_db
def test_the_docs_page_is_for_signed_in_people(client, world):
    response = client.get("/api/docs/")

    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_the_top_bar_links_the_docs_page(world):
    page = world.clients["session"].get("/accounts/").content.decode()

    assert 'href="/api/docs/"' in page
