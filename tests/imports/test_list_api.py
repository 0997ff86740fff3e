"""A channel list's preview through the API (POST /api/channels/lists, "dryRun": true) and
the terminal (manage.py import_channels FILE --user NAME --dry-run); starting its batch from
both (the batch's run through a worker: test_batch_worker.py)."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from chirp.models import ApiToken
from imports.models import ListBatch

pytestmark = pytest.mark.django_db
URL = "/api/channels/lists"
CSV = (
    "\ufeffName,Email,Type,Channel_URL\r\n"
    '"Doe, John",john@x.com,FF,https://youtube.com/@johndoe\r\n'
    "Jane,not an email,FF,@mine\r\n"
    "Again,again@x.com,FF,youtube.com/@JohnDoe/videos\r\n"
    "Other,o@x.com,FF,https://example.com/@someone\r\n"
)


@pytest.fixture
def token(alice) -> dict[str, str]:
    _, key = ApiToken.create(alice, "lists")
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def _outcomes(answer: dict) -> list[tuple[int, str]]:
    return [(row["row"], row["outcome"]) for row in answer["rows"]]


def test_a_multipart_file_dry_run_answers_the_preview(client, alice, token, make_channel):
    make_channel(alice, handle="@mine")
    upload = SimpleUploadedFile("list.csv", CSV.encode(), content_type="text/csv")

    response = client.post(URL, {"file": upload, "dryRun": "true"}, **token)

    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["dryRun"] is True and answer["format"] == "csv"
    assert answer["counts"] == {
        "total": 4,
        "new": 1,
        "existing": 1,
        "followed": 0,
        "duplicate": 1,
        "invalid": 1,
        "flagged": 1,
    }
    assert _outcomes(answer) == [(2, "new"), (3, "existing"), (4, "duplicate"), (5, "invalid")]
    first = answer["rows"][0]
    assert first["channel"] == "https://www.youtube.com/@johndoe"
    assert (first["name"], first["email"]) == ("Doe, John", "john@x.com")
    assert answer["rows"][2]["duplicateOf"] == 2
    assert "not an email address" in answer["rows"][1]["warnings"][0]


def test_a_json_body_in_the_plans_shape_answers_the_preview(client, token):
    body = {
        "dryRun": True,
        "channels": [{"name": "J", "email": "j@x.com", "type": "t", "channel_url": "@jayjay"}, 7],
        "settings": {"quality": "720p", "skip_existing": True},
    }
    response = client.post(URL, json.dumps(body), content_type="application/json", **token)

    assert response.status_code == 200
    answer = response.json()
    assert answer["settings"] == {"quality": "720p", "skip_existing": True}
    assert _outcomes(answer) == [(1, "new"), (2, "invalid")]


def test_a_json_body_with_the_list_as_text(client, token):
    body = {"dryRun": True, "list": "@one\n# skip\n@two\n", "format": "text"}
    response = client.post(URL, json.dumps(body), content_type="application/json", **token)

    assert response.status_code == 200 and response.json()["counts"]["new"] == 2


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"data": {"dryRun": "true"}}, "Choose a file, or paste a list"),
        ({"data": json.dumps({"dryRun": True}), "content_type": "application/json"}, "Send a file"),
        (
            {
                "data": json.dumps({"dryRun": True, "channels": "x"}),
                "content_type": "application/json",
            },
            'must be {"channels"',
        ),
        (
            {"data": json.dumps({"dryRun": True, "list": ""}), "content_type": "application/json"},
            "empty",
        ),
        ({"data": "{not json", "content_type": "application/json"}, "not valid JSON"),
    ],
)
def test_a_list_nothing_can_be_read_from_is_a_json_400(client, token, kwargs, words):
    response = client.post(URL, **kwargs, **token)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert words in response.json()["error"]


def test_an_image_upload_is_a_json_400(client, token):
    upload = SimpleUploadedFile("me.png", b"\x89PNG\r\n\x1a\n\x00\x00", content_type="image/png")
    response = client.post(URL, {"file": upload, "dryRun": "true"}, **token)

    assert response.status_code == 400 and "PNG image" in response.json()["error"]


def test_without_dry_run_the_list_is_queued_as_a_batch_with_its_options(client, token, bob):
    body = {
        "channels": [{"name": "A", "email": "a@x.com", "channel_url": "@one"}, "nope nope"],
        "settings": {"quality": "720p", "skip_existing": False},
        "follow": True,
        "since": "2026-01-01",
    }
    response = client.post(URL, json.dumps(body), content_type="application/json", **token)

    assert response.status_code == 201, response.content
    answer = response.json()
    batch = ListBatch.objects.get(pk=answer["batchId"])
    assert (batch.status, batch.format, batch.quality, batch.only_new, batch.follow) == (
        "pending",
        "json",
        "720",
        False,
        True,
    )
    assert str(batch.since) == "2026-01-01" and answer["batch"]["options"]["quality"] == "720"
    # The batch is the caller's to follow, nobody else's.
    shown = client.get(f"{URL}/{batch.pk}", **token).json()
    assert (shown["status"], shown["rows"]) == ("pending", [])
    _, bobs_key = ApiToken.create(bob, "b")
    other = client.get(f"{URL}/{batch.pk}", HTTP_AUTHORIZATION=f"Bearer {bobs_key}")
    assert other.status_code == 404


def test_a_multipart_upload_without_dry_run_starts_a_batch_named_after_its_file(client, token):
    upload = SimpleUploadedFile("people.csv", CSV.encode(), content_type="text/csv")
    response = client.post(URL, {"file": upload, "limit": "3", "skipExisting": "false"}, **token)

    assert response.status_code == 201, response.content
    batch = ListBatch.objects.get()
    assert (batch.name, batch.limit, batch.only_new, batch.quality) == (
        "people.csv",
        3,
        False,
        "none",
    )
    assert batch.text == CSV.removeprefix("\ufeff")


@pytest.mark.parametrize(
    "extra, words",
    [
        ({"limit": "five"}, "limit must be a whole number"),
        ({"limit": 0}, "greater than or equal to 1"),
        ({"since": "someday"}, "YYYY-MM-DD"),
        ({"quality": "8k"}, "Choose a quality"),
        ({"follow": "yes"}, "follow must be true or false"),
    ],
)
def test_a_bad_option_is_refused_and_nothing_is_queued(client, token, extra, words):
    body = {"channels": ["@one"], **extra}
    response = client.post(URL, json.dumps(body), content_type="application/json", **token)

    assert response.status_code == 400 and words in response.json()["error"]
    assert not ListBatch.objects.exists()


def test_a_list_with_nothing_to_import_starts_no_batch(client, token):
    body = {"channels": ["https://example.com/x", "@one", "@one"][:1]}
    response = client.post(URL, json.dumps(body), content_type="application/json", **token)

    assert response.status_code == 400 and "Nothing in this list" in response.json()["error"]
    assert not ListBatch.objects.exists()


def test_the_api_needs_a_caller(client):
    response = client.post(
        URL, json.dumps({"dryRun": True, "channels": ["@a"]}), "application/json"
    )
    assert response.status_code == 401


# --- manage.py import_channels ------------------------------------------------------------------


def test_the_cli_dry_run_prints_the_preview(tmp_path, alice, make_channel, capsys, fake_youtube):
    make_channel(alice, handle="@mine")
    path = tmp_path / "list.txt"
    path.write_text("# people\n@mine\n@newcomer\n@newcomer\nhttps://vimeo.com/x\n")

    call_command("import_channels", str(path), "--user", "alice", "--dry-run")

    out = capsys.readouterr().out
    assert (
        "4 rows: 1 new, 1 already in your channels, 0 already followed, 1 duplicates, 1 invalid"
        in out
    )
    assert "row 2: Already in your channels — https://www.youtube.com/@mine" in out
    assert "row 4: Duplicate — https://www.youtube.com/@newcomer — duplicate of row 3" in out
    assert "row 5: Invalid — https://vimeo.com/x — Only YouTube links" in out
    assert fake_youtube.requests == []


def test_the_cli_refuses_clearly(tmp_path, alice):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(CommandError, match="empty"):
        call_command("import_channels", str(path), "--user", "alice", "--dry-run")
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        call_command("import_channels", str(path), "--user", "nobody", "--dry-run")
    path.write_text("@one\n")
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("import_channels", str(path), "--user", "alice", "--since", "soon")
    assert not ListBatch.objects.exists()


def test_the_cli_without_dry_run_queues_the_batch_with_its_options(tmp_path, alice, capsys):
    path = tmp_path / "list.txt"
    path.write_text("@one\n@two\n")

    call_command(
        "import_channels",
        str(path),
        "--user",
        "alice",
        "--limit",
        "5",
        "--since",
        "2026-02-01",
        "--quality",
        "audio",
        "--follow",
        "--no-skip-existing",
        "--no-wait",
    )

    batch = ListBatch.objects.get()
    assert (batch.status, batch.name, batch.limit, batch.quality, batch.follow) == (
        "pending",
        "list.txt",
        5,
        "audio",
        True,
    )
    assert (str(batch.since), batch.only_new) == ("2026-02-01", False)
    assert f"Batch {batch.pk}: /channels/lists/{batch.pk}/" in capsys.readouterr().out
