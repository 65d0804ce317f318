"""FileService: OpenAI's files API on the trainer's file store (services/trainer/files/). An upload is parsed as it
arrives into a temporary file, checked as fine-tuning data, and only then stored; a refused one leaves nothing."""
import asyncio
import logging

import grpc
from google.api import httpbody_pb2
from textgen.v1 import files_pb2, files_pb2_grpc

from services.common.callers import caller, sees, visible_to
from services.common.errors import shown
from services.common.openai_errors import OpenAiError, aborting, invalid, not_found
from services.trainer.config import TrainerConfig
from services.trainer.database import OffLoop
from services.trainer.files import upload
from services.trainer.files.store import FINE_TUNE, FileRecord, FileStore
from services.trainer.training.file_formats import check_file

log = logging.getLogger("textgen.trainer")
CHUNK_BYTES = 1024 * 1024  # a file's content goes back in messages of this size
MAX_LIST = 10_000


def file_message(record: FileRecord) -> files_pb2.File:
    return files_pb2.File(id=record.id, object="file", bytes=record.bytes, created_at=int(record.created_at),
                          filename=record.filename, purpose=record.purpose, status="processed")


def _read_chunk(path, offset: int) -> bytes:
    with open(path, "rb") as file:
        file.seek(offset)
        return file.read(CHUNK_BYTES)


class FileServicer(files_pb2_grpc.FileServiceServicer):
    def __init__(self, config: TrainerConfig, files: FileStore) -> None:
        self.config, self.files = config, files
        self.store = OffLoop(files)

    async def owned(self, file_id: str, context, param: str = "file_id") -> FileRecord:
        """The caller's file, or 404 naming it."""
        record = await self.store.get(file_id) if file_id else None
        if record is None or not sees(caller(context), record.owner):
            raise not_found(f"no file with id {shown(file_id)}", param)
        return record

    async def CreateFile(self, request_iterator, context):
        staged = self.files.staging_path()
        try:
            async with aborting(context):
                record = await self._create(request_iterator, staged, caller(context))
                log.info("file uploaded", extra={"file_id": record.id, "bytes": record.bytes,
                                                 "examples": record.examples})
                return file_message(record)
        finally:
            staged.unlink(missing_ok=True)  # refused or failed: nothing half-received stays

    async def _create(self, messages, staged, owner: str) -> FileRecord:
        try:
            received = await upload.receive(messages, staged, self.config.max_upload_bytes, asyncio.to_thread)
        except upload.UploadTooLarge as error:
            raise OpenAiError(grpc.StatusCode.RESOURCE_EXHAUSTED, str(error), param="file") from None
        except upload.UploadRefused as error:
            raise invalid(str(error), param="file") from None
        if received.purpose != FINE_TUNE:
            raise invalid(f"purpose must be {FINE_TUNE!r} (got {shown(received.purpose)}): the files here are the "
                          "training data of fine-tuning jobs", param="purpose")
        checked = await asyncio.to_thread(check_file, staged)
        if checked.problems:
            raise invalid(f"the file is not valid fine-tuning data: {checked.summary()}", param="file",
                          code="invalid_file_format")
        return await self.store.add(staged, owner, received.filename, received.purpose, checked.examples)

    async def ListFiles(self, request, context):
        async with aborting(context):
            limit = request.limit if request.HasField("limit") else MAX_LIST
            if not 1 <= limit <= MAX_LIST:
                raise invalid(f"limit must be between 1 and {MAX_LIST} (got {limit})", "limit")
            if request.order not in ("", "asc", "desc"):
                raise invalid(f"order must be asc or desc (got {shown(request.order)})", "order")
            who = caller(context)
            if request.after:
                await self.owned(request.after, context, "after")
            records, more = await self.store.page(visible_to(who), request.purpose, request.after, limit,
                                                  request.order == "asc")
            return files_pb2.FileList(object="list", data=[file_message(r) for r in records], has_more=more,
                                      first_id=records[0].id if records else "",
                                      last_id=records[-1].id if records else "")

    async def GetFile(self, request, context):
        async with aborting(context):
            return file_message(await self.owned(request.file_id, context))

    async def GetFileContent(self, request, context):
        async with aborting(context):
            record = await self.owned(request.file_id, context)
        path = self.files.content_path(record.id)
        content_type = "text/csv" if record.purpose != FINE_TUNE else "application/jsonl"
        offset, first = 0, True
        while True:
            try:
                data = await asyncio.to_thread(_read_chunk, path, offset)
            except FileNotFoundError:  # deleted while it was being read
                await not_found(f"file {record.id} was deleted", "file_id").abort(context)
            if first or data:  # an empty file still answers once, with its content type
                yield httpbody_pb2.HttpBody(content_type=content_type if first else "", data=data)
            if len(data) < CHUNK_BYTES:
                return
            offset, first = offset + len(data), False

    async def DeleteFile(self, request, context):
        async with aborting(context):
            record = await self.owned(request.file_id, context)
            user = await self.store.delete(record.id)
            if user is not None:
                raise OpenAiError(grpc.StatusCode.ABORTED, f"file {record.id} is in use by fine-tuning job {user}, "
                                  f"which has not ended: cancel it first (POST /v1/fine_tuning/jobs/{user}/cancel) "
                                  "or wait for it to end", param="file_id")
            log.info("file deleted", extra={"file_id": record.id})
            return files_pb2.FileDeleted(id=record.id, object="file", deleted=True)
