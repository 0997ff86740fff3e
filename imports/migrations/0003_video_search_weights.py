"""PostgreSQL only: `search_document` weighs title words A and transcript words D, so that the
search can rank a video whose title matches above one that only mentions the words.

The built-in tsvector_update_trigger of migration 0002 gives every word the same weight: the
trigger now calls a function of ours that sets them. The column, its GIN index and the
trigger's name stay; existing rows are recomputed (the trigger fires on the `title = title`
update, so the backfill is exactly what the trigger computes).
"""

from django.db import migrations

FUNCTION = """
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
    "CREATE TRIGGER imports_video_search_document BEFORE INSERT OR UPDATE OF title, transcript "
    "ON imports_video FOR EACH ROW EXECUTE FUNCTION {function}"
)
BACKFILL = "UPDATE imports_video SET title = title"

FORWARD = [
    FUNCTION,
    DROP_TRIGGER,
    TRIGGER.format(function="imports_video_search_document()"),
    BACKFILL,
]
BACKWARD = [
    DROP_TRIGGER,
    TRIGGER.format(
        function="tsvector_update_trigger(search_document, 'pg_catalog.english', title, transcript)"
    ),
    "DROP FUNCTION IF EXISTS imports_video_search_document()",
    BACKFILL,
]


def run(statements):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement)

    return apply


class Migration(migrations.Migration):
    dependencies = [("imports", "0002_video_search_document")]

    operations = [migrations.RunPython(run(FORWARD), run(BACKWARD), elidable=False)]
