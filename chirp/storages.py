"""The S3 storage (django-storages), with a multipart part size scaled to each file.

S3 takes at most 10,000 parts per upload: with boto3's fixed 8 MB parts a file over 80 GB
cannot be stored. Each save here picks parts of at least CHIRP_S3_PART_SIZE bytes and large
enough for the file to fit in MAX_PARTS (boto3 itself raises a part under 5 MiB to 5 MiB).
This is the one place that speaks boto3; the code that saves a file calls
`default_storage.save(name, File(...))` and does not know where it goes, and asks
`verified_on_upload` whether the stored copy must be read back to be checked.
"""

from __future__ import annotations

import math
import os

from boto3.s3.transfer import TransferConfig
from django.conf import settings
from django.core.files.storage import Storage
from storages.backends.s3 import S3Storage as BaseS3Storage
from storages.utils import ReadBytesWrapper, clean_name, is_seekable

MAX_PARTS = 9_000  # under S3's 10,000, for the rounding up
MB = 1024 * 1024
IN_FLIGHT = 32 * MB  # parts held in memory at once during an upload (see transfer_config_for)


def part_size_for(size: int | None) -> int:
    """Bytes per part for a file of `size` bytes: the configured size, or more for a file that
    would otherwise need more than MAX_PARTS (rounded up to whole megabytes)."""
    minimum = settings.CHIRP_S3_PART_SIZE
    if not size or size <= minimum * MAX_PARTS:
        return minimum
    return math.ceil(size / MAX_PARTS / MB) * MB


class S3Storage(BaseS3Storage):
    def transfer_config_for(self, size: int | None) -> TransferConfig:
        part = part_size_for(size)
        # boto3 reads each part into memory before sending it, by default up to 10 at a time:
        # 80 MB with 8 MB parts, more with the larger parts of a huge file. Here IN_FLIGHT bytes
        # at most (two parts when they are larger): tests/benchmarks/bench_media.py measured a
        # worker storing 2 GB grow by 99 MB before, 20 MB after, and no slower into its S3.
        parts = max(2, IN_FLIGHT // part)
        config = TransferConfig(
            multipart_threshold=part,
            multipart_chunksize=part,
            use_threads=self.use_threads,
            max_concurrency=parts,
        )
        config.max_in_memory_upload_chunks = parts  # s3transfer's, which boto3's does not take
        return config

    def _save(self, name, content):  # type: ignore[no-untyped-def]
        # django-storages' own _save (1.14), with a transfer config per file: the storage
        # instance is shared by the worker's threads, so its attribute cannot be swapped.
        cleaned_name = clean_name(name)
        name = self._normalize_name(cleaned_name)
        params = self._get_write_parameters(name, content)
        size = getattr(content, "size", None)
        if is_seekable(content):
            content.seek(0, os.SEEK_SET)
        content = ReadBytesWrapper(content)
        obj = self.bucket.Object(name)
        original_close = content.close
        content.close = lambda: None  # boto/s3transfer#80: the file must stay open
        try:
            obj.upload_fileobj(content, ExtraArgs=params, Config=self.transfer_config_for(size))
        finally:
            content.close = original_close
        return cleaned_name


def verified_on_upload(storage: Storage) -> bool:
    """Whether `storage` checked the bytes it received against a checksum the uploader sent:
    then its copy's size (a HEAD request for S3) is enough to know it holds the whole file,
    and reading it back is not needed.

    True for S3 while boto3 sends request checksums ("when_supported", its default since 1.36):
    every part, and every single-request upload, carries a CRC32 of its bytes that S3 verifies
    before accepting it. Reading the object back would download the whole file a second time
    (half the time of a store to S3, and the egress a bucket may charge) and hold all of it in
    memory (django-storages' S3File spools it in RAM). A deployment that turns request
    checksums off (AWS_REQUEST_CHECKSUM_CALCULATION=when_required, for a store that refuses
    them) is read back, as the media folder is.
    """
    if not isinstance(storage, S3Storage):
        return False
    config = storage.connection.meta.client.meta.config
    return getattr(config, "request_checksum_calculation", None) == "when_supported"
