"""A channel list's preview through the API (POST /api/channels/lists, "dryRun": true) and
the terminal (manage.py import_channels FILE --user NAME --dry-run)."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from chirp.models import ApiToken

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


def test_starting_without_dry_run_is_refused_plainly(client, token):
    body = {"channels": ["@one"]}
    response = client.post(URL, json.dumps(body), content_type="application/json", **token)

    assert response.status_code == 501 and "dryRun" in response.json()["error"]


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
    with pytest.raises(CommandError, match="use --dry-run"):
        call_command("import_channels", str(path), "--user", "alice")
