"""Imports used to be linked at their start to any channel Chirp knew by the same ID, URL or
handle, so starting one showed its owner a channel that someone else had imported. Now a link
means that the owner's own import listed the channel (Channel.seen). This unlinks the imports
that never got through their listing (not prepared) unless another import of the same owner
did list that channel; an open one is linked again when its listing ends.
"""

from __future__ import annotations

from django.db import migrations
from django.db.models import Exists, OuterRef


def unlink_unlisted_imports(apps, schema_editor) -> None:
    ImportJob = apps.get_model("imports", "ImportJob")
    listed = ImportJob.objects.filter(
        owner=OuterRef("owner"), channel=OuterRef("channel"), prepared=True
    )
    ImportJob.objects.filter(channel__isnull=False, prepared=False).exclude(Exists(listed)).update(
        channel=None
    )


class Migration(migrations.Migration):
    dependencies = [("imports", "0007_video_search_stale")]

    # Backwards: nothing to restore (the links removed were disclosures).
    operations = [migrations.RunPython(unlink_unlisted_imports, migrations.RunPython.noop)]
