"""PostgreSQL 14+ built with lz4: a video's transcript and its timed segments (tens of kB each,
compressed when stored out of line) are compressed with lz4 instead of pglz.

Measured (tests/benchmarks, ~12 kB of text plus ~12 kB of segments): the UPDATE that stores
them took 0.26-0.33 ms with lz4 against 0.66-0.71 ms with pglz, and that UPDATE is on every
video's path. Only values written from now on use it; older ones read as before. Where lz4 is
not available, nothing changes.
"""

from django.db import migrations, transaction

COLUMNS = ("transcript", "transcript_segments", "description")


def compression(method: str):
    def apply(apps, schema_editor):
        connection = schema_editor.connection
        if connection.vendor != "postgresql" or connection.pg_version < 140000:
            return
        columns = ", ".join(f"ALTER COLUMN {c} SET COMPRESSION {method}" for c in COLUMNS)
        try:
            with transaction.atomic(using=connection.alias):
                schema_editor.execute(f"ALTER TABLE imports_video {columns}")
        except Exception as exc:  # a server built without lz4
            if "not supported" not in str(exc):
                raise

    return apply


class Migration(migrations.Migration):
    dependencies = [("imports", "0005_ratelimit_holders_db_default")]

    operations = [migrations.RunPython(compression("lz4"), compression("default"), elidable=False)]
