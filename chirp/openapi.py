"""The JSON API's OpenAPI 3.1 description, served at /api/openapi.json and shown at /api/docs/.

Written by hand beside the views (which stay plain Django views: a framework would change every
response shape the user's plans fixed), and kept honest by tests/chirp/test_openapi.py: it calls
every endpoint for its success and each documented error and validates the real answers
against these schemas (JSON Schema 2020-12, as OpenAPI 3.1 uses), and it fails when a URL under
/api/ or a method a view accepts is missing here. Success objects are closed
(`additionalProperties: false`), so a field added to a view without a line here fails too.

Status and option values are read from the models' choices, so they cannot drift either.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from chirp.jobs import ItemStatus
from imports.models import ImportJob, Quality
from uploads.models import ScrapeJob

Schema = dict[str, Any]

# The user's plans (README: "The user's plans") each endpoint's shapes follow.
UPLOAD_PLAN = "the upload scraper plan (001_74680695b060749f): total_images, processed_count"
IMPORT_PLAN = "the channel import plan (000_b08af53142cb0246): jobId, channelUrl, 409 with jobId"
DASHBOARD_PLAN = "the real-time dashboard plan (002_d1827b7b0ef1a774): total, page, totalPages"


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Schema], *, optional: tuple[str, ...] = ()) -> Schema:
    """A closed object: every property is required unless named optional, and no other."""
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }


def _nullable(schema: Schema) -> Schema:
    return {**schema, "type": [schema["type"], "null"]}


INTEGER: Schema = {"type": "integer"}
COUNT: Schema = {"type": "integer", "minimum": 0}
TEXT: Schema = {"type": "string"}
MOMENT: Schema = {"type": "string", "format": "date-time"}
PERCENT: Schema = {"type": "integer", "minimum": 0, "maximum": 100}

SCRAPE_JOB_PROPERTIES: dict[str, Schema] = {
    "id": INTEGER,
    "url": {"type": "string", "format": "uri", "description": "The page scraped."},
    "status": {"type": "string", "enum": ScrapeJob.Status.values},
    "step": {**TEXT, "description": "What the job is doing now, in words."},
    "error": {**TEXT, "description": "Why the job failed; empty otherwise."},
    "total_images": {**COUNT, "description": "Images found on the page and queued."},
    "images_found": {**COUNT, "description": "Images the page had (before the cap)."},
    "processed_count": {**COUNT, "description": "New images stored."},
    "skipped_count": {**COUNT, "description": "Images already known."},
    "failed_count": COUNT,
    "cancelled_count": COUNT,
    "percent": PERCENT,
    "created_at": MOMENT,
    "started_at": _nullable(MOMENT),
    "finished_at": _nullable(MOMENT),
    "updated_at": MOMENT,
}

IMPORT_JOB_PROPERTIES: dict[str, Schema] = {
    "id": INTEGER,
    "status": {"type": "string", "enum": ImportJob.Status.values},
    "channelUrl": {**TEXT, "description": "The channel as understood (normalised)."},
    "channelId": {
        "type": ["integer", "null"],
        "description": "The channel, once this user's own import has listed it; null before.",
    },
    "channelTitle": {"type": ["string", "null"], "description": "As channelId."},
    "options": _object(
        {
            "tab": {"type": "string", "enum": ImportJob.Tab.values},
            "limit": {"type": ["integer", "null"], "description": "Newest videos first."},
            "onlyNew": {"type": "boolean"},
            "quality": {
                "type": ["string", "null"],
                "enum": [*Quality.values, None],
                "description": "The media downloaded for each video; null: none.",
            },
        }
    ),
    "total": COUNT,
    "done": COUNT,
    "skipped": COUNT,
    "alreadyImported": {
        **COUNT,
        "description": "Listed videos this user had imported before: no work, not in total.",
    },
    "failed": COUNT,
    "cancelled": COUNT,
    "progress": PERCENT,
    "step": TEXT,
    "error": TEXT,
    "paused": {
        "description": "While YouTube asked Chirp to slow down: until when, and why.",
        "oneOf": [
            {"type": "null"},
            _object({"until": MOMENT, "reason": TEXT, "message": TEXT}),
        ],
    },
    "createdAt": MOMENT,
    "startedAt": _nullable(MOMENT),
    "finishedAt": _nullable(MOMENT),
    "updatedAt": MOMENT,
}


def _field_errors(item: Schema) -> Schema:
    return {
        "type": "object",
        "description": "The messages of each field that was refused.",
        "additionalProperties": {"type": "array", "items": item},
    }


SCHEMAS: dict[str, Schema] = {
    "Error": _object({"error": {**TEXT, "description": "What went wrong, for a person."}}),
    "ScrapeJobRefused": _object(
        {
            "error": TEXT,
            "errors": _field_errors(_object({"message": TEXT, "code": TEXT})),
        },
        optional=("errors",),
    ),
    "ImportRefused": _object(
        {
            "error": {**TEXT, "description": "The first field's message."},
            "errors": _field_errors(TEXT),
        },
        optional=("errors",),
    ),
    "ImportConflict": _object(
        {
            "error": TEXT,
            "jobId": {**INTEGER, "description": "The import already open for this channel."},
            "jobStatus": {"type": "string", "enum": ImportJob.Status.values},
        }
    ),
    "ScrapeJob": _object(SCRAPE_JOB_PROPERTIES),
    "ScrapeJobStarted": _object(
        {
            **SCRAPE_JOB_PROPERTIES,
            "warning": {
                "type": ["string", "null"],
                "description": "Set when you scraped this page before (the job starts anyway).",
            },
        }
    ),
    "ScrapeJobRetried": _object(
        {**SCRAPE_JOB_PROPERTIES, "retried": {**COUNT, "description": "Items sent back."}}
    ),
    "ScrapeJobItem": _object(
        {
            "id": INTEGER,
            "source_url": {"type": "string", "description": "The image's address."},
            "status": {"type": "string", "enum": ItemStatus.values},
            "error": TEXT,
            "image_id": {"type": ["integer", "null"], "description": "Once stored or known."},
            "face_count": {"type": ["integer", "null"], "minimum": 0},
        }
    ),
    "ScrapeJobDetail": _object(
        {**SCRAPE_JOB_PROPERTIES, "items": {"type": "array", "items": _ref("ScrapeJobItem")}}
    ),
    "ScrapeJobList": _object(
        {
            "jobs": {"type": "array", "items": _ref("ScrapeJob"), "description": "Newest first."},
            "page": {**INTEGER, "minimum": 1},
            "pages": {**INTEGER, "minimum": 1},
            "count": {**COUNT, "description": "Jobs on all pages."},
        }
    ),
    "ImportJob": _object(IMPORT_JOB_PROPERTIES, optional=("channelId", "channelTitle")),
    "ImportStarted": _object(
        {
            "jobId": INTEGER,
            "status": {"type": "string", "enum": ImportJob.Status.values},
            "job": _ref("ImportJob"),
        }
    ),
    "ChannelJobs": _object(
        {
            "jobs": {"type": "array", "items": _ref("ImportJob"), "description": "Newest first."},
            "total": {**COUNT, "description": "Your imports of this channel."},
            "page": {**INTEGER, "minimum": 1},
            "totalPages": {**COUNT, "description": "0 when there are none."},
        }
    ),
    "ActiveChannelJobs": _object({"jobs": {"type": "array", "items": _ref("ImportJob")}}),
    "ChannelStats": _object(
        {
            "channelId": INTEGER,
            "totalVideos": COUNT,
            "importedVideos": {**COUNT, "description": "Videos fully enriched."},
            "withTranscripts": COUNT,
            "failedVideos": COUNT,
            "activeJobs": {**COUNT, "description": "Your open imports of this channel."},
            "failedJobs": {
                **COUNT,
                "description": "Your imports that failed, or ended with failed videos.",
            },
            "cancelledJobs": {**COUNT, "description": "Your imports that were cancelled."},
            "successRate": {
                "type": ["number", "null"],
                "description": "Percent of the videos whose import ended that were imported "
                "(imported / (imported + failed)); null until one ended.",
            },
        }
    ),
    "OpenAPI": {"type": "object", "description": "This document."},
}

# -- examples (validated against the schemas by the tests) ---------------------------------------

_SCRAPE_JOB = {
    "id": 7,
    "url": "https://example.com/gallery",
    "status": "processing",
    "step": "Processing images",
    "error": "",
    "total_images": 32,
    "images_found": 32,
    "processed_count": 14,
    "skipped_count": 3,
    "failed_count": 1,
    "cancelled_count": 0,
    "percent": 56,
    "created_at": "2026-01-31T10:00:00.512Z",
    "started_at": "2026-01-31T10:00:01.020Z",
    "finished_at": None,
    "updated_at": "2026-01-31T10:05:00.004Z",
}
_IMPORT_JOB = {
    "id": 12,
    "status": "enriching",
    "channelUrl": "https://www.youtube.com/@triggerpod",
    "channelId": 3,
    "channelTitle": "Trigger Pod",
    "options": {"tab": "videos", "limit": None, "onlyNew": False, "quality": None},
    "total": 45,
    "done": 20,
    "skipped": 0,
    "alreadyImported": 0,
    "failed": 1,
    "cancelled": 0,
    "progress": 47,
    "step": "Enriching videos",
    "error": "",
    "paused": None,
    "createdAt": "2026-01-31T10:00:00.512345+00:00",
    "startedAt": "2026-01-31T10:00:02.100000+00:00",
    "finishedAt": None,
    "updatedAt": "2026-01-31T10:05:00.000000+00:00",
}
_PENDING_IMPORT = {
    **_IMPORT_JOB,
    "status": "pending",
    "channelId": None,
    "channelTitle": None,
    "total": 0,
    "done": 0,
    "failed": 0,
    "progress": 0,
    "step": "",
    "startedAt": None,
}

# -- the operations -------------------------------------------------------------------------------

SESSION_ONLY_403 = "CSRF check failed (a session caller's POST or DELETE without the CSRF token)."


def _json(schema: str, example: Any = None, description: str = "Done.") -> dict[str, Any]:
    media: dict[str, Any] = {"schema": _ref(schema)}
    if example is not None:
        media["example"] = example
    return {"description": description, "content": {"application/json": media}}


def _error(description: str, example: str, schema: str = "Error", **extra: Any) -> dict[str, Any]:
    return _json(schema, {"error": example, **extra}, description)


UNAUTHORIZED = _error(
    "No session and no token, or a token that is wrong, revoked or expired.",
    "Authentication required.",
)
FORBIDDEN = _error(SESSION_ONLY_403, "CSRF check failed: CSRF token missing.")
NOT_FOUND = _error("No such job or channel of yours (another user's is a 404 too).", "Not found.")
PATH_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}


def _page_parameter(description: str) -> dict[str, Any]:
    return {
        "name": "page",
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "integer", "minimum": 1},
    }


def _operation(
    summary: str, plan: str, responses: dict[int, Any], description: str = "", **extra: Any
) -> dict[str, Any]:
    return {
        "summary": summary,
        "description": description,
        "x-plan": plan,
        **extra,
        "responses": {str(status): answer for status, answer in responses.items()},
    }


PATHS: dict[str, dict[str, Any]] = {
    "/api/scrape-jobs": {
        "get": _operation(
            "List your scrape jobs",
            UPLOAD_PLAN,
            {
                200: _json(
                    "ScrapeJobList", {"jobs": [_SCRAPE_JOB], "page": 1, "pages": 1, "count": 1}
                ),
                400: _error(
                    "The page is not a whole number from 1.",
                    "Invalid query.",
                    "ScrapeJobRefused",
                    errors={"page": [{"message": "Enter a whole number.", "code": "invalid"}]},
                ),
                401: UNAUTHORIZED,
            },
            "50 jobs a page, newest first. A page past the last gives the last.",
            parameters=[_page_parameter("Page number (default 1).")],
        ),
        "post": _operation(
            "Scrape a web page",
            UPLOAD_PLAN,
            {
                202: _json(
                    "ScrapeJobStarted",
                    {**_SCRAPE_JOB, "status": "pending", "warning": None},
                    "The job is queued; follow it with GET /api/scrape-jobs/{id}.",
                ),
                400: _error(
                    "The body is not a JSON object, or the address is refused (the reason is "
                    "in errors.url).",
                    "Invalid job.",
                    "ScrapeJobRefused",
                    errors={"url": [{"message": "Enter a valid URL.", "code": "invalid"}]},
                ),
                401: UNAUTHORIZED,
                403: FORBIDDEN,
            },
            "Chirp finds the page's images, fetches each one, detects faces and stores what it "
            "has not seen before. Addresses inside the server's network are refused.",
            requestBody={
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["url"],
                            "properties": {
                                "url": {
                                    "type": "string",
                                    "format": "uri",
                                    "description": "The web page (https:// is assumed).",
                                }
                            },
                        },
                        "example": {"url": "https://example.com/gallery"},
                    }
                },
            },
        ),
    },
    "/api/scrape-jobs/{id}": {
        "parameters": [PATH_ID],
        "get": _operation(
            "One scrape job, with its images",
            UPLOAD_PLAN,
            {
                200: _json(
                    "ScrapeJobDetail",
                    {
                        **_SCRAPE_JOB,
                        "items": [
                            {
                                "id": 301,
                                "source_url": "https://example.com/img1.jpg",
                                "status": "completed",
                                "error": "",
                                "image_id": 88,
                                "face_count": 2,
                            },
                            {
                                "id": 302,
                                "source_url": "https://example.com/img2.jpg",
                                "status": "queued",
                                "error": "",
                                "image_id": None,
                                "face_count": None,
                            },
                        ],
                    },
                ),
                401: UNAUTHORIZED,
                404: NOT_FOUND,
            },
        ),
        "delete": _operation(
            "Delete a scrape job (its images stay)",
            UPLOAD_PLAN,
            {
                204: {"description": "Deleted; no body."},
                401: UNAUTHORIZED,
                403: FORBIDDEN,
                404: NOT_FOUND,
                409: _error(
                    "The job is running.", "Cancel the job before deleting it (or let it finish)."
                ),
            },
        ),
    },
    "/api/scrape-jobs/{id}/retry": {
        "parameters": [PATH_ID],
        "post": _operation(
            "Retry a finished job's failed images",
            UPLOAD_PLAN,
            {
                202: _json("ScrapeJobRetried", {**_SCRAPE_JOB, "status": "pending", "retried": 1}),
                401: UNAUTHORIZED,
                403: FORBIDDEN,
                404: NOT_FOUND,
                409: _error(
                    "The job is still running, or has no failed images.",
                    "This job has no failed items to retry.",
                ),
            },
        ),
    },
    "/api/channels/import": {
        "get": _operation(
            "Your latest channel import",
            IMPORT_PLAN,
            {
                200: _json("ImportJob", _IMPORT_JOB),
                401: UNAUTHORIZED,
                404: _error("You have not imported anything yet.", "No imports yet."),
            },
        ),
        "post": _operation(
            "Import a YouTube channel",
            IMPORT_PLAN,
            {
                201: _json(
                    "ImportStarted",
                    {"jobId": 12, "status": "pending", "job": _PENDING_IMPORT},
                    "The import is queued. job.channelId and job.channelTitle stay null until "
                    "your own import has listed the channel.",
                ),
                400: _error(
                    "The body is not a JSON object, or a field is refused (channelUrl not "
                    "text, not a YouTube channel; a tab or limit out of range).",
                    "Enter a YouTube channel: its @handle or a link to it.",
                    "ImportRefused",
                    errors={"channel": ["Enter a YouTube channel: its @handle or a link to it."]},
                ),
                401: UNAUTHORIZED,
                403: FORBIDDEN,
                409: _error(
                    "An import of this channel is already open: its id is in jobId.",
                    "Import already in progress.",
                    "ImportConflict",
                    jobId=12,
                    jobStatus="enriching",
                ),
            },
            "Every video is listed at once, then enriched in stages (metadata, transcript, "
            "chapters). Follow it with GET /api/channels/import/{id}.",
            requestBody={
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["channelUrl"],
                            "properties": {
                                "channelUrl": {
                                    "type": "string",
                                    "description": "A channel's @handle or a link to it.",
                                },
                                "tab": {
                                    "type": "string",
                                    "enum": ImportJob.Tab.values,
                                    "default": ImportJob.Tab.VIDEOS.value,
                                },
                                "limit": {
                                    "type": ["integer", "null"],
                                    "minimum": 1,
                                    "description": "At most this many, newest first.",
                                },
                                "onlyNew": {
                                    "type": "boolean",
                                    "default": False,
                                    "description": "Only videos new since your last import.",
                                },
                                "quality": {
                                    "type": ["string", "integer", "null"],
                                    "enum": [*Quality.values, 360, 480, 720, 1080, "none", None],
                                    "default": None,
                                    "description": "Also store each video's media at this "
                                    "quality (audio, 360...1080, best); null or none: no media.",
                                },
                            },
                        },
                        "example": {"channelUrl": "@triggerpod", "limit": 50},
                    }
                },
            },
        ),
    },
    "/api/channels/import/{id}": {
        "parameters": [PATH_ID],
        "get": _operation(
            "One channel import",
            IMPORT_PLAN,
            {200: _json("ImportJob", _IMPORT_JOB), 401: UNAUTHORIZED, 404: NOT_FOUND},
        ),
    },
    "/api/channels/{id}/jobs": {
        "parameters": [PATH_ID],
        "get": _operation(
            "Your imports of a channel, a page at a time",
            DASHBOARD_PLAN,
            {
                200: _json(
                    "ChannelJobs", {"jobs": [_IMPORT_JOB], "total": 45, "page": 1, "totalPages": 3}
                ),
                400: _error(
                    "page or limit is not a whole number in range.",
                    "Invalid page or limit.",
                    "ImportRefused",
                    errors={"limit": ["Ensure this value is less than or equal to 100."]},
                ),
                401: UNAUTHORIZED,
                404: NOT_FOUND,
            },
            "A page past the last has an empty jobs list.",
            parameters=[
                _page_parameter("Page number (default 1)."),
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "description": "Jobs per page (default 20).",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                },
            ],
        ),
    },
    "/api/channels/{id}/jobs/active": {
        "parameters": [PATH_ID],
        "get": _operation(
            "Your open imports of a channel",
            DASHBOARD_PLAN,
            {
                200: _json("ActiveChannelJobs", {"jobs": [_IMPORT_JOB]}),
                401: UNAUTHORIZED,
                404: NOT_FOUND,
            },
        ),
    },
    "/api/channels/{id}/stats": {
        "parameters": [PATH_ID],
        "get": _operation(
            "A channel's numbers (the channel page's cards)",
            DASHBOARD_PLAN,
            {
                200: _json(
                    "ChannelStats",
                    {
                        "channelId": 3,
                        "totalVideos": 120,
                        "importedVideos": 98,
                        "withTranscripts": 85,
                        "failedVideos": 2,
                        "activeJobs": 1,
                        "failedJobs": 1,
                        "cancelledJobs": 0,
                        "successRate": 97.7,
                    },
                ),
                401: UNAUTHORIZED,
                404: NOT_FOUND,
            },
        ),
    },
    "/api/openapi.json": {
        "get": _operation(
            "This description",
            "none (Chirp's own)",
            {200: _json("OpenAPI"), 401: UNAUTHORIZED},
            "Readable at /api/docs/ (a page, for a signed-in browser).",
        ),
    },
}

DESCRIPTION = """\
Everything the Uploads and Channels pages do, as JSON. Requests and answers are JSON
(`Content-Type: application/json`); every error is an object with an `error` message meant for
a person, sometimes with details (`errors` per field, `jobId`).

**Signing in.** Either way, you act as one user and see only your own jobs and the channels
your own imports listed; anyone else's is a 404.

- *Token*: send `Authorization: Bearer <key>`. Create a key on your account page (`/accounts/`;
  it is shown once) or ask an administrator (admin, *API tokens*). A wrong, revoked or expired
  key answers 401. No CSRF token is needed.
- *Session*: a browser signed in to Chirp. Reading needs nothing more; a POST or DELETE needs the
  CSRF token in an `X-CSRFToken` header (from the `csrftoken` cookie), or it answers 403.

**On every endpoint**: 401 without a valid session or token; a method the endpoint does not
take answers 405 with an `Allow` header. Response shapes follow the user's plans: each
operation names its plan (`x-plan`); the scrape jobs keep the upload plan's snake_case
(`total_images`), the channels the import and dashboard plans' camelCase (`jobId`,
`totalPages`).
"""

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
    "info": {"title": "Chirp API", "version": "1", "description": DESCRIPTION},
    "servers": [{"url": "/"}],
    "security": [{"token": []}, {"session": []}],
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {
            "token": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API token from your account page (/accounts/).",
            },
            "session": {
                "type": "apiKey",
                "in": "cookie",
                "name": "sessionid",
                "description": "A signed-in browser; POST and DELETE also need X-CSRFToken.",
            },
        },
    },
}

# -- the docs page's view of it -----------------------------------------------------------------

METHOD_ORDER = ("get", "post", "put", "patch", "delete")
_INLINE = [
    (re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
    (re.compile(r"\*\*(.+?)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"\*(.+?)\*"), r"<em>\1</em>"),
]


def _inline(text: str) -> str:
    text = escape(text)
    for pattern, replacement in _INLINE:
        text = pattern.sub(replacement, text)
    return text


def description_html() -> SafeString:
    """DESCRIPTION's little Markdown (paragraphs, `- ` lists, `code`, *em*, **strong**) as HTML.
    Only our own text goes through it, escaped before any tag is added."""
    blocks = []
    for block in DESCRIPTION.split("\n\n"):
        lines = block.strip().split("\n")
        if lines[0].startswith("- "):
            entries: list[str] = []
            for line in lines:
                if line.startswith("- "):
                    entries.append(line[2:])
                else:
                    entries[-1] += " " + line.strip()
            items = "".join(f"<li>{_inline(entry)}</li>" for entry in entries)
            blocks.append(f"<ul>{items}</ul>")
        else:
            blocks.append(f"<p>{_inline(' '.join(lines))}</p>")
    return mark_safe("".join(blocks))  # noqa: S308 (escaped above)


def resolve(schema: Schema) -> Schema:
    while "$ref" in schema:
        schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _type_label(schema: Schema) -> str:
    schema = resolve(schema)
    if "oneOf" in schema:
        return " or ".join(_type_label(option) for option in schema["oneOf"])
    kinds = schema.get("type", "any")
    label = " or ".join(kinds) if isinstance(kinds, list) else kinds
    if "enum" in schema:
        label += ": " + ", ".join(str(value) for value in schema["enum"])
    if "format" in schema:
        label += f" ({schema['format']})"
    return label


def field_rows(schema: Schema, prefix: str = "") -> list[dict[str, str]]:
    """The fields of an object schema as table rows, nested ones as `jobs[].id`, `options.tab`."""
    schema = resolve(schema)
    rows: list[dict[str, str]] = []
    required = set(schema.get("required", ()))
    for name, field in schema.get("properties", {}).items():
        field_schema = resolve(field)
        rows.append(
            {
                "name": prefix + name,
                "type": _type_label(field),
                "required": "yes" if name in required else "no",
                "description": field.get("description", field_schema.get("description", "")),
            }
        )
        nested = next(
            (o for o in field_schema.get("oneOf", ()) if o.get("type") == "object"), field_schema
        )
        if nested.get("type") == "object" and "properties" in nested:
            rows += field_rows(nested, f"{prefix}{name}.")
        elif field_schema.get("type") == "array" and "items" in field_schema:
            rows += field_rows(field_schema["items"], f"{prefix}{name}[].")
    return rows


def _body(content: dict[str, Any] | None) -> dict[str, Any] | None:
    if not content:
        return None
    media = content["application/json"]
    schema_name = media["schema"].get("$ref", "").rsplit("/", 1)[-1]
    example = media.get("example")
    return {
        "schema": schema_name,
        "fields": field_rows(media["schema"]),
        "example": json.dumps(example, indent=2, ensure_ascii=False) if example else "",
    }


def operations() -> list[dict[str, Any]]:
    """Each endpoint and method, ready for templates/chirp/api_docs.html."""
    found = []
    for path, item in PATHS.items():
        for method in METHOD_ORDER:
            if method not in item:
                continue
            operation = item[method]
            found.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "anchor": f"{method}-{path}".replace("/", "-").strip("-"),
                    "summary": operation["summary"],
                    "description": operation["description"],
                    "plan": operation["x-plan"],
                    "parameters": [*item.get("parameters", ()), *operation.get("parameters", ())],
                    "request": _body(operation.get("requestBody", {}).get("content")),
                    "responses": [
                        {
                            "status": status,
                            "description": answer["description"],
                            "body": _body(answer.get("content")),
                        }
                        for status, answer in operation["responses"].items()
                    ],
                }
            )
    return found
