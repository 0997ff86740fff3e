"""The YouTube limiter's requests in flight (imports/limiter.py): who holds a slot and when its
lease ends, in the limiter's row, so that taking a slot is part of the same conditional UPDATE
that reserves a request's turn."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("imports", "0003_video_search_weights"),
    ]

    operations = [
        migrations.AddField(
            model_name="ratelimit",
            name="holders",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
