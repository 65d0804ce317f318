"""`textgen files` and `textgen fine-tune`: OpenAI's files and fine-tuning API from a terminal (the trainer's
FileService and FineTuningService; through a gateway that checks keys, each takes a `train` key).

    textgen files                                 the files uploaded, newest first
    textgen files upload data.jsonl               upload chat examples (checked: a bad file names its lines)
    textgen files show|content|delete FILE_ID
    textgen fine-tune create --training-file data.jsonl --suffix support --n-epochs 3 --watch
                                                  (a local path is uploaded first; a file id is used as it is)
    textgen fine-tune create --method dpo --beta 0.2 --training-file pairs.jsonl
    textgen fine-tune create --method reinforcement --grader @grader.json --training-file prompts.jsonl \
        --compute-multiplier 0.5 --temperature 0.8 --max-completion-tokens 32 --skip-uniform-groups
    textgen fine-tune                             the jobs, newest first
    textgen fine-tune show|events|watch|cancel JOB_ID
    textgen fine-tune delete-model MODEL          a fine-tuned model, with every version of its adapter
"""
import argparse
import pathlib
import sys
import time

from google.protobuf import json_format

from textgen.client import fine_tuning_methods
from textgen.client.tables import table

ENDED = ("succeeded", "failed", "cancelled")
POLL_SECONDS = 1.0


def _file_rows(files) -> list[str]:
    return table([("FILE", "PURPOSE", "BYTES", "NAME")] + [(f.id, f.purpose, f.bytes, f.filename) for f in files])


def files(client, args) -> int:
    if args.action == "upload":
        if not pathlib.Path(args.target).is_file():
            print(f"textgen: {args.target}: no such file to upload", file=sys.stderr)
            return 1
        uploaded = client.upload_file(pathlib.Path(args.target))
        print(f"uploaded {uploaded.id} ({uploaded.bytes} bytes)")
    elif args.action == "show":
        print("\n".join(_file_rows([client.file(args.target)])))
    elif args.action == "content":
        sys.stdout.buffer.write(client.file_content(args.target))
    elif args.action == "delete":
        print(f"deleted {client.delete_file(args.target).id}")
    else:
        print("\n".join(_file_rows(client.files())))
    return 0


def _job_line(job) -> str:
    model = f" -> {job.fine_tuned_model}" if job.HasField("fine_tuned_model") else ""
    error = f": {job.error.message}" if job.HasField("error") else ""
    return f"{job.id} {job.status} ({job.model}{model}){error}"


def _event_line(event) -> str:
    """An event's level and message; a metrics event's figures from its data, the method's headline first."""
    if event.type == "metrics" and event.data.fields:
        return f"{event.level:5} {fine_tuning_methods.metrics_line(json_format.MessageToDict(event.data))}"
    return f"{event.level:5} {event.message}"


def _watch(client, job_id: str) -> int:
    """Prints the job's events as they come until it ends; exits 0 when it succeeded."""
    shown = ""
    while True:
        job = client.fine_tuning_job(job_id)
        events = client.fine_tuning_events(job_id, limit=1000)
        new = [e for e in events if not shown or e.id > shown]
        for event in reversed(new):
            print(_event_line(event), flush=True)
        shown = events[0].id if events else shown
        if job.status in ENDED:
            print(_job_line(job))
            return 0 if job.status == "succeeded" else 1
        time.sleep(POLL_SECONDS)


def _uploaded(client, given: str | None) -> str | None:
    """A file id as it is; a local file uploaded first."""
    if given is None or not pathlib.Path(given).is_file():
        return given
    uploaded = client.upload_file(pathlib.Path(given))
    print(f"uploaded {given} as {uploaded.id}")
    return uploaded.id


def fine_tune(client, args) -> int:
    if args.action == "create":
        job = client.create_fine_tuning_job(
            args.model, _uploaded(client, args.training_file), validation_file=_uploaded(client, args.validation_file),
            suffix=args.suffix, seed=args.seed, **args.request)
        print(_job_line(job))
        return _watch(client, job.id) if args.watch else 0
    if args.action in ("show", "cancel"):
        call = client.fine_tuning_job if args.action == "show" else client.cancel_fine_tuning_job
        print(_job_line(call(args.target)))
    elif args.action == "events":
        for event in reversed(client.fine_tuning_events(args.target, limit=1000)):
            print(_event_line(event))
    elif args.action == "watch":
        return _watch(client, args.target)
    elif args.action == "delete-model":
        print(f"deleted {client.delete_model(args.target).id}")
    else:
        rows = [("JOB", "STATUS", "MODEL", "FINE-TUNED MODEL")] + [
            (j.id, j.status, j.model, j.fine_tuned_model or "-") for j in client.fine_tuning_jobs()]
        print("\n".join(table(rows)))
    return 0


def add_to(commands) -> None:
    command = commands.add_parser("files", help="uploaded files: list, upload, show, content, delete",
                                  description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    command.add_argument("action", nargs="?", choices=["list", "upload", "show", "content", "delete"], default="list")
    command.add_argument("target", nargs="?", help="a file's path (upload) or id")
    command.set_defaults(run=files, needs_target=("upload", "show", "content", "delete"))
    command = commands.add_parser("fine-tune", help="fine-tuning jobs: create, list, show, events, watch, cancel",
                                  description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    command.add_argument("action", nargs="?", default="list",
                         choices=["list", "create", "show", "events", "watch", "cancel", "delete-model"])
    command.add_argument("target", nargs="?", help="a job id (a model's name for delete-model)")
    command.add_argument("--model", default="base", help="the base model (default) or a fine-tuned model of yours")
    command.add_argument("--training-file", help="a file id, or a local JSONL file to upload first")
    command.add_argument("--validation-file", help="as --training-file, never trained on: its loss (a reinforcement "
                         "job: its graded reward) is measured as the job goes")
    command.add_argument("--suffix")
    command.add_argument("--seed", type=int)
    fine_tuning_methods.add_flags(command)
    command.add_argument("--watch", action="store_true", help="print the job's events until it ends")
    command.set_defaults(run=fine_tune, needs_target=("show", "events", "watch", "cancel", "delete-model"))
