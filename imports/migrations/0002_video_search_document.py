"""PostgreSQL only: full-text search over titles and transcripts, and room for in-place updates.

- `search_document`, a tsvector column the model does not declare, kept up to date by the
  built-in tsvector_update_trigger whenever a title or transcript is written (a stage change
  writes neither: nothing is recomputed), and GIN-indexed. VideoQuerySet.search() queries it.
- A fill factor of 70 on the videos table: each video is updated four times while it is
  enriched, and with free room in its page PostgreSQL updates it in place (HOT) instead of
  writing new entries in every index.

Other databases search with a plain case-insensitive match and need none of this.
"""

from django.db import migrations

FORWARD = [
    "ALTER TABLE imports_video SET (fillfactor = 70)",
    "ALTER TABLE imports_video ADD COLUMN search_document tsvector",
    "CREATE INDEX imports_video_search ON imports_video USING gin (search_document)",
    "CREATE TRIGGER imports_video_search_document BEFORE INSERT OR UPDATE OF title, transcript "
    "ON imports_video FOR EACH ROW EXECUTE FUNCTION "
    "tsvector_update_trigger(search_document, 'pg_catalog.english', title, transcript)",
]
BACKWARD = [
    "DROP TRIGGER IF EXISTS imports_video_search_document ON imports_video",
    "DROP INDEX IF EXISTS imports_video_search",
    "ALTER TABLE imports_video DROP COLUMN IF EXISTS search_document",
    "ALTER TABLE imports_video RESET (fillfactor)",
]


def run(statements):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement)

    return apply


class Migration(migrations.Migration):
    dependencies = [("imports", "0001_initial")]

    operations = [migrations.RunPython(run(FORWARD), run(BACKWARD), elidable=False)]
