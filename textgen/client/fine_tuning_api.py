"""The client's calls of OpenAI's files and fine-tuning API, over gRPC to the trainer (FileService,
FineTuningService): upload a JSONL file, start a job on it, follow its events, delete what is done with."""
import pathlib
import uuid
from collections.abc import Iterator

from google.api import httpbody_pb2
from google.protobuf import struct_pb2

from textgen.client.calls import call, given, streamed
from textgen.v1 import files_pb2, files_pb2_grpc, fine_tuning_pb2, fine_tuning_pb2_grpc

UPLOAD_PIECE_BYTES = 1024 * 1024  # as Envoy hands an upload on


def upload_messages(path: pathlib.Path, purpose: str) -> Iterator[httpbody_pb2.HttpBody]:
    """The multipart/form-data body POST /v1/files takes, in messages of at most UPLOAD_PIECE_BYTES, the file read a
    piece at a time. The form's framing (RFC 7578) is written here rather than by an encoder that would hold the
    whole file in memory."""
    boundary = f"textgen-{uuid.uuid4().hex}"
    name = path.name.replace('"', "")
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n{purpose}\r\n--{boundary}\r\n'
            f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    yield httpbody_pb2.HttpBody(content_type=f"multipart/form-data; boundary={boundary}", data=head)
    with open(path, "rb") as file:
        while piece := file.read(UPLOAD_PIECE_BYTES):
            yield httpbody_pb2.HttpBody(data=piece)
    yield httpbody_pb2.HttpBody(data=f"\r\n--{boundary}--\r\n".encode())


METHODS = {"supervised": (fine_tuning_pb2.SupervisedMethod, fine_tuning_pb2.SupervisedHyperparameters),
           "dpo": (fine_tuning_pb2.DpoMethod, fine_tuning_pb2.DpoHyperparameters),
           "reinforcement": (fine_tuning_pb2.ReinforcementMethod, fine_tuning_pb2.ReinforcementHyperparameters)}


def fine_tuning_method(method: str, hyperparameters: dict, grader: dict | None = None
                       ) -> fine_tuning_pb2.FineTuningMethod:
    """`method` with its hyperparameters in method.<method>.hyperparameters: a number as a number, a bool (a
    reinforcement job's skip_uniform_groups) as itself, None left out ("auto"); the grader a reinforcement job's."""
    section, message = METHODS[method]
    values = {name: value if isinstance(value, bool) else struct_pb2.Value(number_value=value)
              for name, value in hyperparameters.items() if value is not None}
    fields = {"hyperparameters": message(**values)}
    if grader is not None:
        fields["grader"] = struct_pb2.Struct()
        fields["grader"].update(grader)
    return fine_tuning_pb2.FineTuningMethod(type=method, **{method: section(**fields)})


class FineTuningCalls:
    """A mixin of Client: `channel(name)` and `timeout` are the client's."""

    def _files(self) -> files_pb2_grpc.FileServiceStub:
        return files_pb2_grpc.FileServiceStub(self.channel("trainer"))

    def _fine_tuning(self) -> fine_tuning_pb2_grpc.FineTuningServiceStub:
        return fine_tuning_pb2_grpc.FineTuningServiceStub(self.channel("trainer"))

    def upload_file(self, path: pathlib.Path, purpose: str = "fine-tune") -> files_pb2.File:
        """Uploads a JSONL file of chat examples (checked by the trainer: a bad one names its lines)."""
        return call("trainer", self._files().CreateFile, upload_messages(pathlib.Path(path), purpose),
                    timeout=self.timeout)

    def files(self, purpose: str = "") -> list[files_pb2.File]:
        """The caller's files, newest first."""
        return list(call("trainer", self._files().ListFiles, files_pb2.ListFilesRequest(purpose=purpose),
                         timeout=self.timeout).data)

    def file(self, file_id: str) -> files_pb2.File:
        return call("trainer", self._files().GetFile, files_pb2.GetFileRequest(file_id=file_id),
                    timeout=self.timeout)

    def file_content(self, file_id: str) -> bytes:
        pieces = self._files().GetFileContent(files_pb2.GetFileRequest(file_id=file_id), timeout=self.timeout)
        return b"".join(piece.data for piece in streamed("trainer", pieces))

    def delete_file(self, file_id: str) -> files_pb2.FileDeleted:
        return call("trainer", self._files().DeleteFile, files_pb2.DeleteFileRequest(file_id=file_id),
                    timeout=self.timeout)

    def create_fine_tuning_job(self, model: str, training_file: str, *, validation_file: str | None = None,
                               suffix: str | None = None, seed: int | None = None, method: str = "supervised",
                               grader: dict | None = None, **hyperparameters) -> fine_tuning_pb2.FineTuningJob:
        """A fine-tuning job of `model` on the uploaded file `training_file` by `method` (supervised, dpo or
        reinforcement, whose `grader` is OpenAI's grader object); `hyperparameters` the method's (n_epochs=3,
        beta=0.1, ...; None: auto). Returns at once."""
        request = fine_tuning_pb2.CreateFineTuningJobRequest(
            model=model, training_file=training_file, method=fine_tuning_method(method, hyperparameters, grader),
            **given(validation_file=validation_file, suffix=suffix, seed=seed))
        return call("trainer", self._fine_tuning().CreateFineTuningJob, request, timeout=self.timeout)

    def fine_tuning_jobs(self, limit: int = 20) -> list[fine_tuning_pb2.FineTuningJob]:
        """The caller's fine-tuning jobs, newest first."""
        return list(call("trainer", self._fine_tuning().ListFineTuningJobs,
                         fine_tuning_pb2.ListFineTuningJobsRequest(limit=limit), timeout=self.timeout).data)

    def fine_tuning_job(self, job_id: str) -> fine_tuning_pb2.FineTuningJob:
        return call("trainer", self._fine_tuning().GetFineTuningJob,
                    fine_tuning_pb2.FineTuningJobRequest(fine_tuning_job_id=job_id), timeout=self.timeout)

    def cancel_fine_tuning_job(self, job_id: str) -> fine_tuning_pb2.FineTuningJob:
        return call("trainer", self._fine_tuning().CancelFineTuningJob,
                    fine_tuning_pb2.FineTuningJobRequest(fine_tuning_job_id=job_id), timeout=self.timeout)

    def fine_tuning_events(self, job_id: str, after: str = "", limit: int = 100
                           ) -> list[fine_tuning_pb2.FineTuningJobEvent]:
        """The job's events, newest first; `after` an event id: those before it."""
        return list(call("trainer", self._fine_tuning().ListFineTuningEvents,
                         fine_tuning_pb2.ListFineTuningEventsRequest(fine_tuning_job_id=job_id, after=after,
                                                                     limit=limit), timeout=self.timeout).data)

    def delete_model(self, model: str) -> fine_tuning_pb2.ModelDeleted:
        """Deletes a fine-tuned model (its adapter, every version)."""
        return call("trainer", self._fine_tuning().DeleteModel, fine_tuning_pb2.DeleteModelRequest(model=model),
                    timeout=self.timeout)
