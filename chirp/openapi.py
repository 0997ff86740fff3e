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
from imports.models import CheckMethod, ImportJob, ListBatch, Quality
from imports.models.following import QUALITIES
from uploads.models import ScrapeJob

Schema = dict[str, Any]

# The user's plans (README: "The user's plans") each endpoint's shapes follow.
UPLOAD_PLAN = "the upload scraper plan (001_74680695b060749f): total_images, processed_count"
IMPORT_PLAN = "the channel import plan (000_b08af53142cb0246): jobId, channelUrl, 409 with jobId"
FOLLOW_PLAN = "issue 12: follow channels"
DASHBOARD_PLAN = "the real-time dashboard plan (002_d1827b7b0ef1a774): total, page, totalPages"
LIST_PLAN = "the mass download plan (003_5b2e313032f5215e): channels with name, email, type"


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
            "since": {
                "type": ["string", "null"],
                "format": "date",
                "description": "Only videos published on or after this day (a backfill).",
            },
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
    "publishedBeforeSince": {
        **COUNT,
        "description": "Listed within the week's margin but published before `since`: dropped.",
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
            "face_count": {
                "type": ["integer", "null"],
                "minimum": 0,
                "description": "The faces in the image as you count them: what the detector "
                "found, less the boxes you marked “not a face” on the image's page (another "
                "user's say does not count). Null until the image is stored or known.",
            },
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
    "ListRowPreview": _object(
        {
            "row": {**INTEGER, "description": "The line in the file (CSV, text) or position."},
            "outcome": {
                "type": "string",
                "enum": ["new", "duplicate", "existing", "followed", "invalid"],
            },
            "channel": {
                "type": ["string", "null"],
                "description": "The channel as understood (normalised); null when invalid.",
            },
            "input": {**TEXT, "description": "The channel as written."},
            "name": TEXT,
            "email": {**TEXT, "description": "As written (flagged in warnings if not one)."},
            "type": TEXT,
            "extra": {"type": "object", "description": "The row's other columns, as written."},
            "message": {**TEXT, "description": "Why it is invalid, or which row it repeats."},
            "duplicateOf": {"type": ["integer", "null"]},
            "channelId": {
                "type": ["integer", "null"],
                "description": "Your channel it names, when already in your channels.",
            },
            "warnings": {"type": "array", "items": TEXT},
        }
    ),
    "ListPreview": _object(
        {
            "dryRun": {"type": "boolean", "const": True},
            "format": {"type": "string", "enum": ["csv", "takeout", "json", "text", "opml"]},
            "columns": {"type": "array", "items": TEXT, "description": "A CSV's header."},
            "counts": _object(
                {
                    key: COUNT
                    for key in (
                        "total",
                        "new",
                        "duplicate",
                        "existing",
                        "followed",
                        "invalid",
                        "flagged",
                    )
                }
            ),
            "settings": _object(
                {"quality": TEXT, "skip_existing": {"type": "boolean"}},
                optional=("quality", "skip_existing"),
            ),
            "warnings": {"type": "array", "items": TEXT},
            "rows": {"type": "array", "items": _ref("ListRowPreview")},
        }
    ),
    "ListBatchRow": _object(
        {
            "row": {**COUNT, "description": "The row's line (CSV, text) or position (JSON, OPML)."},
            "channel": {**TEXT, "description": "The channel's title once listed, else its URL."},
            "channelUrl": TEXT,
            "person": TEXT,
            "email": TEXT,
            "type": TEXT,
            "status": {"type": "string", "enum": ItemStatus.values},
            "message": {**TEXT, "description": "Why it failed or was skipped; its summary."},
            "videosImported": COUNT,
            "failed": {**COUNT, "description": "Videos of its import that failed."},
            "withoutCaptions": COUNT,
            "alreadyThere": {**COUNT, "description": "Videos imported before (skipped)."},
            "mediaStored": {**COUNT, "description": "Videos of its channel with stored media."},
            "mediaSize": {**COUNT, "description": "Bytes of those videos' stored files."},
            "importId": {"type": ["integer", "null"], "description": "The row's import."},
            "channelId": {"type": ["integer", "null"]},
            "personId": {"type": ["integer", "null"]},
        }
    ),
    "ListBatch": _object(
        {
            "id": INTEGER,
            "status": {"type": "string", "enum": ListBatch.Status.values},
            "name": {**TEXT, "description": "The list's file name, if it had one."},
            "format": {"type": "string", "enum": ["csv", "takeout", "json", "text", "opml"]},
            "options": _object(
                {
                    "limit": {
                        "type": ["integer", "null"],
                        "description": "At most this many videos a new channel (a channel you "
                        "have already is checked for all its new videos).",
                    },
                    "since": {"type": ["string", "null"], "format": "date"},
                    "skipExisting": {"type": "boolean"},
                    "quality": {"type": "string", "enum": list(QUALITIES)},
                    "follow": {"type": "boolean"},
                }
            ),
            "total": {**COUNT, "description": "Rows (0 until the batch is prepared)."},
            "done": {**COUNT, "description": "Rows whose channel was imported."},
            "skipped": {**COUNT, "description": "Rows left out: invalid or duplicates."},
            "failed": COUNT,
            "cancelled": COUNT,
            "progress": PERCENT,
            "videosImported": COUNT,
            "videosFailed": COUNT,
            "withoutCaptions": COUNT,
            "mediaStored": {
                **COUNT,
                "description": "Videos of the rows' channels with stored media.",
            },
            "mediaSize": {**COUNT, "description": "Bytes of those videos' stored files."},
            "step": {**TEXT, "description": "The channel importing now, and how far it is."},
            "error": TEXT,
            "createdAt": MOMENT,
            "startedAt": _nullable(MOMENT),
            "finishedAt": _nullable(MOMENT),
            "elapsedSeconds": {"type": ["integer", "null"], "minimum": 0},
            "remainingSeconds": {
                "type": ["integer", "null"],
                "minimum": 0,
                "description": "An estimate, at the pace of the rows done so far (their own "
                "time: a pause does not count); null before the first row.",
            },
            "rows": {"type": "array", "items": _ref("ListBatchRow")},
        },
        optional=("rows",),
    ),
    "ListBatchStarted": _object(
        {
            "dryRun": {"type": "boolean", "const": False},
            "batchId": INTEGER,
            "batch": _ref("ListBatch"),
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
    "Follow": _object(
        {
            "channelId": INTEGER,
            "quality": {
                "type": "string",
                "enum": list(QUALITIES),
                "description": "Media downloaded for new videos (none: metadata only).",
            },
            "since": {
                "type": ["string", "null"],
                "format": "date",
                "description": "Backfill: videos published on or after this day.",
            },
            "followedAt": MOMENT,
            "lastChecked": _nullable(MOMENT),
            "lastCheckMethod": {"type": ["string", "null"], "enum": [*CheckMethod.values, None]},
            "lastError": {"type": ["string", "null"]},
        }
    ),
    "Following": _object(
        {
            "following": {"const": True},
            "follow": _ref("Follow"),
            "backfillJobId": {
                **INTEGER,
                "description": "The import a new `since` date started (a one-time backfill).",
            },
        },
        optional=("backfillJobId",),
    ),
    "Unfollowed": _object({"channelId": INTEGER, "following": {"const": False}}),
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
    "options": {"tab": "videos", "limit": None, "onlyNew": False, "since": None, "quality": None},
    "total": 45,
    "done": 20,
    "skipped": 0,
    "alreadyImported": 0,
    "publishedBeforeSince": 0,
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

_FOLLOW = {
    "channelId": 3,
    "quality": "720",
    "since": "2026-01-01",
    "followedAt": "2026-01-31T10:00:00.512345+00:00",
    "lastChecked": None,
    "lastCheckMethod": None,
    "lastError": None,
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
# Any endpoint, when something fails on the server (chirp/middleware.py JsonApiErrorsMiddleware
# answers in JSON; the error and its traceback are in the server's log).
RESPONSES: dict[str, Any] = {
    "InternalError": _error(
        "Something failed on the server (it is logged there); try again later.", "Internal error"
    )
}
INTERNAL_ERROR = {"$ref": "#/components/responses/InternalError"}
# Answered by chirp/bodylimit.py in front of Django, before the body is read or anyone signed in.
TOO_LARGE = _error(
    "The request body is over the server's limit (CHIRP_MAX_REQUEST_BYTES, 10 MB by default); "
    "it is refused before it is read, whoever sends it.",
    "The request body is too large: the limit is 10 MB.",
)
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
        "responses": {
            **{str(status): answer for status, answer in responses.items()},
            "500": INTERNAL_ERROR,
        },
    }


_LIST_BATCH = {
    "id": 7,
    "status": "running",
    "name": "channels.csv",
    "format": "csv",
    "options": {
        "limit": None,
        "since": None,
        "skipExisting": True,
        "quality": "none",
        "follow": False,
    },
    "total": 25,
    "done": 10,
    "skipped": 1,
    "failed": 0,
    "cancelled": 0,
    "progress": 44,
    "videosImported": 412,
    "videosFailed": 0,
    "withoutCaptions": 3,
    "mediaStored": 380,
    "mediaSize": 9126805504,
    "step": "Importing John Doe's channel: Enriching videos: 20 of 50",
    "error": "",
    "createdAt": "2026-11-30T10:00:00+00:00",
    "startedAt": "2026-11-30T10:00:01+00:00",
    "finishedAt": None,
    "elapsedSeconds": 95,
    "remainingSeconds": 120,
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
                413: TOO_LARGE,
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
                413: TOO_LARGE,
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
                413: TOO_LARGE,
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
                                "since": {
                                    "type": "string",
                                    "format": "date",
                                    "description": "YYYY-MM-DD: only videos published on or "
                                    "after this day (a backfill; a date in the future is refused).",
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
    "/api/channels/lists": {
        "post": _operation(
            "Preview a list of channels",
            LIST_PLAN,
            {
                200: _json(
                    "ListPreview",
                    {
                        "dryRun": True,
                        "format": "csv",
                        "columns": ["name", "email", "type", "channel_url"],
                        "counts": {
                            "total": 1,
                            "new": 1,
                            "duplicate": 0,
                            "existing": 0,
                            "followed": 0,
                            "invalid": 0,
                            "flagged": 0,
                        },
                        "settings": {},
                        "warnings": [],
                        "rows": [
                            {
                                "row": 2,
                                "outcome": "new",
                                "channel": "https://www.youtube.com/@johndoe",
                                "input": "https://youtube.com/@johndoe",
                                "name": "John Doe",
                                "email": "john@example.com",
                                "type": "FF-Ti/Se-CS/P(B) #4",
                                "extra": {},
                                "message": "",
                                "duplicateOf": None,
                                "channelId": None,
                                "warnings": [],
                            }
                        ],
                    },
                    "What Chirp understood, row by row; nothing is fetched from YouTube.",
                ),
                400: _error(
                    "Nothing could be read from the list (empty, binary, not UTF-8, over the "
                    "size or row limit, a CSV header without a channel column, JSON not in the "
                    "plan's shape). A row that cannot be used is an invalid row in the 200.",
                    "The list is empty: it has no channel in it.",
                ),
                201: _json(
                    "ListBatchStarted",
                    {"dryRun": False, "batchId": 7, "batch": _LIST_BATCH},
                    "Without dryRun: the batch that imports the list is queued (its rows are "
                    "read when it starts); follow it at /api/channels/lists/{id}.",
                ),
                401: UNAUTHORIZED,
                403: FORBIDDEN,
            },
            "A file as multipart/form-data (`file`, optional `format`, `dryRun=true`), or a "
            'JSON body: the plan\'s `{"dryRun": true, "channels": [...], "settings": {...}}`, '
            'or `{"dryRun": true, "list": "<the list as text>", "format": "csv"}`. Formats: '
            "csv, takeout, json, text, opml (detected from the content when not named). "
            "Without `dryRun` the list is imported as a batch, with the options `limit` (a new "
            "channel's first import takes at most this many videos), `since` (YYYY-MM-DD), "
            "`skipExisting` (default true), `quality` and `follow`; the list's own `settings` "
            "pre-fill them. The channels are imported one at a time, in the imports lane with "
            "everyone else's imports.",
            requestBody={
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "dryRun": {"type": "boolean"},
                                "channels": {"type": "array"},
                                "settings": {"type": "object"},
                                "list": TEXT,
                                "format": TEXT,
                                "limit": {
                                    "type": "integer",
                                    "minimum": 1,
                                    "description": "At most this many videos a new channel.",
                                },
                                "since": {"type": "string", "format": "date"},
                                "skipExisting": {"type": "boolean"},
                                "quality": {"type": "string", "enum": list(QUALITIES)},
                                "follow": {"type": "boolean"},
                            },
                        }
                    },
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "file": {"type": "string", "format": "binary"},
                                "format": TEXT,
                                "dryRun": TEXT,
                                "limit": TEXT,
                                "since": TEXT,
                                "skipExisting": TEXT,
                                "quality": TEXT,
                                "follow": TEXT,
                            },
                        }
                    },
                },
            },
        ),
    },
    "/api/channels/lists/{id}": {
        "parameters": [PATH_ID],
        "get": _operation(
            "A list batch's progress and its report",
            LIST_PLAN,
            {
                200: _json(
                    "ListBatch",
                    {
                        **_LIST_BATCH,
                        "rows": [
                            {
                                "row": 2,
                                "channel": "John Doe's channel",
                                "channelUrl": "https://www.youtube.com/channel/UC0000000000000000000001",
                                "person": "John Doe",
                                "email": "john@example.com",
                                "type": "FF-Ti/Se-CS/P(B) #4",
                                "status": "completed",
                                "message": "12 videos imported",
                                "videosImported": 12,
                                "failed": 0,
                                "withoutCaptions": 1,
                                "alreadyThere": 0,
                                "mediaStored": 12,
                                "mediaSize": 301989888,
                                "importId": 31,
                                "channelId": 5,
                                "personId": 3,
                            }
                        ],
                    },
                    "Live figures while it runs; once it ended, the report: one entry per row "
                    "of the list (invalid rows and duplicates are skipped, with the reason).",
                ),
                401: UNAUTHORIZED,
                404: _error("No such batch of yours (another user's is a 404 too).", "Not found."),
            },
        ),
    },
    "/api/channels/{id}/follow": {
        "parameters": [PATH_ID],
        "post": _operation(
            "Follow a channel (or change how you follow it)",
            FOLLOW_PLAN,
            {
                201: _json("Following", {"following": True, "follow": _FOLLOW}),
                200: _json(
                    "Following",
                    {"following": True, "follow": {**_FOLLOW, "quality": "best"}},
                    "You followed it already: its options are updated.",
                ),
                400: _error(
                    "A field is refused (a quality not among the choices, a date not YYYY-MM-DD).",
                    "Choose a quality: none, audio, 360, 480, 720, 1080, best.",
                    "ImportRefused",
                    errors={
                        "quality": ["Choose a quality: none, audio, 360, 480, 720, 1080, best."]
                    },
                ),
                401: UNAUTHORIZED,
                403: FORBIDDEN,
                404: NOT_FOUND,
            },
            "Chirp then fetches the channel's new uploads as they come (an RSS poll every "
            "CHIRP_FOLLOW_POLL_MINUTES, a full check every CHIRP_FOLLOW_FULL_CHECK_DAYS). Only a "
            "channel you see (your own import listed it) can be followed.",
            requestBody={
                "required": False,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "quality": {
                                    "type": "string",
                                    "enum": list(QUALITIES),
                                    "default": "none",
                                },
                                "since": {"type": "string", "format": "date"},
                            },
                        },
                        "example": {"quality": "720", "since": "2026-01-01"},
                    }
                },
            },
        ),
        "delete": _operation(
            "Unfollow a channel",
            FOLLOW_PLAN,
            {
                200: _json("Unfollowed", {"channelId": 3, "following": False}),
                401: UNAUTHORIZED,
                403: FORBIDDEN,
                404: _error(
                    "No such channel of yours, or you do not follow it.",
                    "You do not follow this channel.",
                ),
            },
            "Nothing more is fetched for you; when its last follower leaves, Chirp stops "
            "watching the channel.",
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
take answers 405 with an `Allow` header. A request body over the server's limit (10 MB by
default) answers 413 before it is read. A failure on the server answers 500 (in JSON too).
Response shapes follow the user's plans: each operation names its plan (`x-plan`); the scrape
jobs keep the upload plan's snake_case (`total_images`), the channels the import and dashboard
plans' camelCase (`jobId`, `totalPages`).
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
        "responses": RESPONSES,
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


def resolve_response(answer: dict[str, Any]) -> dict[str, Any]:
    """A response, or the one in components/responses it refers to."""
    if "$ref" in answer:
        return RESPONSES[answer["$ref"].rsplit("/", 1)[1]]
    return answer


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
                            "description": resolve_response(answer)["description"],
                            "body": _body(resolve_response(answer).get("content")),
                        }
                        for status, answer in operation["responses"].items()
                    ],
                }
            )
    return found
