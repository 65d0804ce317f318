"""The client's training calls: the seed's SFT and RL jobs (TrainerService) and the published adapters
(AdapterService), both served by the trainer."""
from collections.abc import Iterator

from textgen.client.calls import call, given, streamed
from textgen.v1 import adapters_pb2, adapters_pb2_grpc, trainer_pb2, trainer_pb2_grpc


class TrainingCalls:
    """A mixin of Client: `channel(name)` and `timeout` are the client's."""

    def _trainer(self) -> trainer_pb2_grpc.TrainerServiceStub:
        return trainer_pb2_grpc.TrainerServiceStub(self.channel("trainer"))

    def train_sft(self, **params) -> trainer_pb2.Job:
        """Queues an SFT job (fields of TrainSftRequest: max_examples, num_train_epochs, ...); returns at once."""
        return call("trainer", self._trainer().TrainSft, trainer_pb2.TrainSftRequest(**given(**params)),
                     timeout=self.timeout)

    def train_rl(self, **params) -> trainer_pb2.Job:
        """Queues an RL job (fields of TrainRlRequest); refused until an SFT adapter is published."""
        return call("trainer", self._trainer().TrainRl, trainer_pb2.TrainRlRequest(**given(**params)),
                     timeout=self.timeout)

    def jobs(self) -> list[trainer_pb2.Job]:
        """Every job, newest first."""
        return list(call("trainer", self._trainer().ListJobs, trainer_pb2.ListJobsRequest(),
                          timeout=self.timeout).jobs)

    def job(self, job_id: str) -> trainer_pb2.Job:
        return call("trainer", self._trainer().GetJob, trainer_pb2.GetJobRequest(job_id=job_id),
                     timeout=self.timeout)

    def watch(self, job_id: str, timeout: float | None = None) -> Iterator[trainer_pb2.JobEvent]:
        """Progress events until the job ends (the last one has a finished status)."""
        return streamed("trainer", self._trainer().WatchJob(trainer_pb2.WatchJobRequest(job_id=job_id),
                                                             timeout=timeout))

    def cancel(self, job_id: str) -> trainer_pb2.Job:
        return call("trainer", self._trainer().CancelJob, trainer_pb2.CancelJobRequest(job_id=job_id),
                     timeout=self.timeout)

    # --- adapters (served by the trainer, which publishes them) -----------------------------------------------
    def _adapters(self) -> adapters_pb2_grpc.AdapterServiceStub:
        return adapters_pb2_grpc.AdapterServiceStub(self.channel("trainer"))

    def adapters(self) -> list[adapters_pb2.Adapter]:
        """Every published adapter with its versions, newest first."""
        return list(call("trainer", self._adapters().ListAdapters, adapters_pb2.ListAdaptersRequest(),
                          timeout=self.timeout).adapters)

    def serve_adapter_version(self, name: str, version: str) -> adapters_pb2.Adapter:
        """Makes `version` the one `name` serves (roll back or forward)."""
        return call("trainer", self._adapters().ServeAdapterVersion,
                     adapters_pb2.ServeAdapterVersionRequest(name=name, version=version), timeout=self.timeout)

    def delete_adapter(self, name: str, version: str | None = None):
        """Deletes one version of `name`, or with no `version` the whole adapter."""
        if version is None:
            return call("trainer", self._adapters().DeleteAdapter, adapters_pb2.DeleteAdapterRequest(name=name),
                         timeout=self.timeout)
        return call("trainer", self._adapters().DeleteAdapterVersion,
                     adapters_pb2.DeleteAdapterVersionRequest(name=name, version=version), timeout=self.timeout)
