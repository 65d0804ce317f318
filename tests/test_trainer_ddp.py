"""Data-parallel training: with TRAINER_PROCESSES=2 an SFT job trains in two CPU processes (DDP over gloo) and
publishes one adapter that loads."""
import grpc
from textgen.v1 import trainer_pb2, trainer_pb2_grpc

from devtools.models import RANDOM_GPT2, random_models_dir
from devtools.processes import free_port, start_service
from services.common import adapters
from services.common.devices import resolve
from textgen.paths import SQUAD_SAMPLE


def test_an_sft_job_trains_in_two_processes_and_publishes_a_loadable_adapter(tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    models = random_models_dir(tmp_path)
    env = {"MODELS_DIR": str(models), "LLM_BASE_MODEL": str(models / RANDOM_GPT2),
           "SQUAD_DATASET": str(SQUAD_SAMPLE), "TRAINER_PROCESSES": "2", "TRAINER_TORCH_THREADS": "1",
           "TRAINER_EVAL_EXAMPLES": "2", "TRAINER_EVAL_MAX_NEW_TOKENS": "8", "LLM_ADDR": f"127.0.0.1:{free_port()}"}
    with start_service("services.trainer", env, "TRAINER_PORT") as trainer, \
            grpc.insecure_channel(trainer.address) as channel:
        stub = trainer_pb2_grpc.TrainerServiceStub(channel)
        job = stub.TrainSft(trainer_pb2.TrainSftRequest(max_examples=16, num_train_epochs=1, max_length=96,
                                                        lora_r=4))
        events = list(stub.WatchJob(trainer_pb2.WatchJobRequest(job_id=job.job_id), timeout=600))
        done = stub.GetJob(trainer_pb2.GetJobRequest(job_id=job.job_id))
    assert events[-1].status == "succeeded", (events[-1].message, trainer.logs()[-3000:])
    assert done.device == f"{resolve('cpu', 'auto', 'TRAINER').describe()} x 2 processes"
    # 16 rows, batch 4 per process, 2 processes: 2 optimizer steps, not the 4 one process takes.
    assert done.progress.total_steps == 2
    path = adapters.current_path(models, "sft")
    assert path is not None and path.name == done.adapter_version
    assert not [p for p in adapters.adapter_dir(models, "sft").iterdir() if p.name.startswith(".staging")]
    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(models / RANDOM_GPT2), str(path))
