"""“Not a face” becomes each user's own say (FaceVerdict) instead of one flag per box shared by
everyone who sees the picture.

Who set an existing flag was never recorded, so it cannot be given back to that one user. The
users who could have set it are those who see the image (a Sighting of it): each of them gets
the verdict. So the migration changes nobody's view (what they saw struck through stays struck
through, and is now theirs to undo), and nobody who cannot see the image gets anything. A flag
on an image nobody sees any more is dropped.

`Image.face_count` goes back to what the detector found (the flags had taken it down): a user's
own count is now worked out from their verdicts. Going back restores the shared flags (a box is
flagged if anyone said it is not a face) and lowers the counts again.
"""

from collections import defaultdict

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models
from django.db.models import Count, F

BATCH = 2000


def flags_to_verdicts(apps, schema_editor):
    DetectedFace = apps.get_model("uploads", "DetectedFace")
    FaceVerdict = apps.get_model("uploads", "FaceVerdict")
    Image = apps.get_model("uploads", "Image")
    Sighting = apps.get_model("uploads", "Sighting")
    flagged = DetectedFace.objects.filter(not_a_face=True)
    viewers = defaultdict(set)
    sightings = Sighting.objects.filter(image__in=flagged.values("image_id")).order_by()
    for owner_id, image_id in sightings.values_list("owner_id", "image_id").distinct():
        viewers[image_id].add(owner_id)
    now = django.utils.timezone.now()
    batch = []
    for face_id, image_id in flagged.values_list("pk", "image_id").iterator(chunk_size=BATCH):
        batch += [
            FaceVerdict(user_id=owner_id, face_id=face_id, created=now)
            for owner_id in sorted(viewers[image_id])
        ]
        if len(batch) >= BATCH:
            FaceVerdict.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    FaceVerdict.objects.bulk_create(batch, ignore_conflicts=True)
    per_image = flagged.order_by().values("image_id").annotate(n=Count("pk"))
    for row in per_image.iterator(chunk_size=BATCH):
        Image.objects.filter(pk=row["image_id"]).update(face_count=F("face_count") + row["n"])


def verdicts_to_flags(apps, schema_editor):
    DetectedFace = apps.get_model("uploads", "DetectedFace")
    Image = apps.get_model("uploads", "Image")
    DetectedFace.objects.filter(verdicts__isnull=False).update(not_a_face=True)
    flagged = DetectedFace.objects.filter(not_a_face=True)
    per_image = flagged.order_by().values("image_id").annotate(n=Count("pk"))
    for row in per_image.iterator(chunk_size=BATCH):
        Image.objects.filter(pk=row["image_id"]).update(face_count=F("face_count") - row["n"])


class Migration(migrations.Migration):
    dependencies = [
        ("uploads", "0004_detectedface_not_a_face"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="FaceVerdict",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("created", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "face",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="verdicts",
                        to="uploads.detectedface",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="face_verdicts",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "“not a face” verdict",
                "ordering": ["-created", "-pk"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("user", "face"), name="uploads_faceverdict_once"
                    )
                ],
            },
        ),
        migrations.RunPython(flags_to_verdicts, verdicts_to_flags, elidable=False),
        migrations.RemoveField(model_name="detectedface", name="not_a_face"),
    ]
