"""A transcript's search vector is built off the video's path (PostgreSQL).

Building the vector of a 10-minute video's transcript takes PostgreSQL ~1.3 ms, most of the
transcript stage's UPDATE. The worker now stores a transcript with `search_stale` set: the
trigger then builds the title's part only (a title is searchable at once), and the whole vector
is built when `search_stale` goes back to false (Video.refresh_search_documents: on every tick
of the import's monitor, before the import finishes, and before a search). Every other write
(the admin, a title change) builds the whole vector at once, as before.

The partial index finds the few stale videos without reading the table; a stage change does not
touch `search_stale`, so it still updates the row in place (HOT).
"""

from django.db import migrations, models

FUNCTION = """
CREATE OR REPLACE FUNCTION imports_video_search_document() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.search_stale THEN
        NEW.search_document :=
            setweight(to_tsvector('pg_catalog.english', coalesce(NEW.title, '')), 'A');
    ELSE
        NEW.search_document :=
            setweight(to_tsvector('pg_catalog.english', coalesce(NEW.title, '')), 'A')
            || setweight(to_tsvector('pg_catalog.english', coalesce(NEW.transcript, '')), 'D');
    END IF;
    RETURN NEW;
END
$$
"""
# Migration 0003's function, for going back.
OLD_FUNCTION = """
CREATE OR REPLACE FUNCTION imports_video_search_document() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_document :=
        setweight(to_tsvector('pg_catalog.english', coalesce(NEW.title, '')), 'A')
        || setweight(to_tsvector('pg_catalog.english', coalesce(NEW.transcript, '')), 'D');
    RETURN NEW;
END
$$
"""
DROP_TRIGGER = "DROP TRIGGER IF EXISTS imports_video_search_document ON imports_video"
TRIGGER = (
    "CREATE TRIGGER imports_video_search_document BEFORE INSERT OR UPDATE OF {columns} "
    "ON imports_video FOR EACH ROW EXECUTE FUNCTION imports_video_search_document()"
)

FORWARD = [FUNCTION, DROP_TRIGGER, TRIGGER.format(columns="title, transcript, search_stale")]
BACKWARD = [
    "UPDATE imports_video SET search_stale = false WHERE search_stale",  # build what is left
    OLD_FUNCTION,
    DROP_TRIGGER,
    TRIGGER.format(columns="title, transcript"),
]


def run(statements):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement)

    return apply


class Migration(migrations.Migration):
    dependencies = [("imports", "0006_video_transcript_lz4")]

    operations = [
        migrations.AddField(
            model_name="video",
            name="search_stale",
            field=models.BooleanField(db_default=False, default=False, editable=False),
        ),
        migrations.AddIndex(
            model_name="video",
            index=models.Index(
                condition=models.Q(("search_stale", True)),
                fields=["id"],
                name="imports_video_stale",
            ),
        ),
        migrations.RunPython(run(FORWARD), run(BACKWARD), elidable=False),
    ]
