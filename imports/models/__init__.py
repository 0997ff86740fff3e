"""YouTube channels and their videos (a catalog shared by the installation), and the import jobs
that fill it (private to whoever started them), split by concept; everything is re-exported
here, so `from imports.models import Video` and the migrations do not change."""

from imports.models.channels import Channel, ChannelQuerySet, channels_of
from imports.models.following import ChannelWatch, CheckMethod, Follow
from imports.models.jobs import ImportJob, ImportJobItem, banner_fragment
from imports.models.limits import RateLimit
from imports.models.lists import ListBatch, ListBatchRow
from imports.models.media import MediaFile, Quality
from imports.models.people import Person, PersonChannel, people_export_rows, spreadsheet_safe
from imports.models.videos import Video, VideoQuerySet
from imports.models.websub import WebSubNotification, WebSubSubscription

__all__ = [
    "Channel",
    "ChannelQuerySet",
    "ChannelWatch",
    "CheckMethod",
    "Follow",
    "ImportJob",
    "ImportJobItem",
    "ListBatch",
    "ListBatchRow",
    "MediaFile",
    "Person",
    "PersonChannel",
    "Quality",
    "RateLimit",
    "Video",
    "VideoQuerySet",
    "WebSubNotification",
    "WebSubSubscription",
    "banner_fragment",
    "channels_of",
    "people_export_rows",
    "spreadsheet_safe",
]
