"""textgen — the system from a terminal, over gRPC (addresses from BASELINE_ADDR, RNN_ADDR, LLM_ADDR, TRAINER_ADDR,
else the local defaults; TEXTGEN_API_KEY, sent with every call, for a gateway that checks keys; an address written
https://host:port is reached over TLS, verified against the CA certificate TEXTGEN_CA_FILE names).

    textgen generate bigram "the" -n 15          textgen generate rnn "the captain" -n 15 --temperature 0.8
    textgen ask "Who wrote it?" --context "It was written by Ada." --adapter rl
    textgen ask --text "The ship" -n 40           (text mode: continue the text)
    textgen stream "Who wrote it?" --context "It was written by Ada."   (prints the answer as it is generated)
    textgen train sft --max-examples 200 --watch  (a live progress bar until the job ends)
    textgen train rl --steps 60
    textgen jobs | textgen watch JOB_ID | textgen cancel JOB_ID
    textgen status                                (each service's health, the base model, the adapters)
    textgen adapters [show NAME | serve NAME VERSION | delete NAME [VERSION]]   (published adapters)
    textgen files upload data.jsonl | textgen fine-tune create --training-file FILE_ID --watch   (your own data)

A failure is one line on stderr and exit code 1 (2 for a mistyped command).
"""
import argparse
import sys

from google.protobuf.descriptor import FieldDescriptor

from textgen.client import adapter_commands, fine_tuning_commands, fine_tuning_methods
from textgen.client.api import Client, TextgenError
from textgen.client.tables import table
from textgen.v1 import trainer_pb2

FINISHED = ("succeeded", "failed", "cancelled")


def _out(*lines: str) -> None:
    print(*lines, sep="\n", flush=True)


def _warn(response) -> None:
    if response.HasField("warning"):
        print(f"warning: {response.warning}", file=sys.stderr)


def generate(client: Client, args) -> int:
    if args.model == "bigram":
        response = client.generate(args.start_word, length=args.length, seed=args.seed)
    else:
        response = client.generate_rnn(args.start_word, length=args.length, temperature=args.temperature,
                                       seed=args.seed)
    _out(response.generated_text)
    _warn(response)
    return 0


def _llm_fields(args) -> dict:
    return dict(question=args.question, start_word=args.text, context=args.context, length=args.length,
                adapter=args.adapter, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                seed=args.seed)


def ask(client: Client, args) -> int:
    response = client.ask(**_llm_fields(args))
    _out(response.generated_text)
    print(f"({response.adapter}{' ' + response.adapter_version if response.adapter_version else ''}, "
          f"{response.generated_tokens} tokens)", file=sys.stderr)
    _warn(response)
    return 0


def stream(client: Client, args) -> int:
    for chunk in client.stream(**_llm_fields(args)):
        print(chunk.text, end="", flush=True)
        if chunk.HasField("final"):
            print()
            _warn(chunk.final)
            return 0
    print()
    print("error: the stream ended before its final chunk", file=sys.stderr)
    return 1


def _progress_text(event) -> str:
    progress = event.progress
    value = (f", loss {progress.loss:.3f}" if progress.HasField("loss") else "") + \
            (f", reward {progress.reward:.3f}" if progress.HasField("reward") else "")
    return f"{event.status}{value}"


def watch_job(client: Client, job_id: str) -> int:
    """A progress bar fed by the job's event stream; the exit code says whether the job succeeded."""
    from tqdm import tqdm

    last = None
    with tqdm(desc=job_id, unit="step", dynamic_ncols=True) as bar:
        for event in client.watch(job_id):
            last = event
            if event.progress.total_steps and bar.total != event.progress.total_steps:
                bar.reset(total=event.progress.total_steps)
            bar.n = event.progress.step
            bar.set_postfix_str(_progress_text(event), refresh=False)
            bar.refresh()
    if last is None or last.status not in FINISHED:
        print(f"error: the event stream of job {job_id} ended before the job did", file=sys.stderr)
        return 1
    _out(f"job {job_id} {last.status}: {last.message}")
    return 0 if last.status == "succeeded" else 1


def train(client: Client, args) -> int:
    message = trainer_pb2.TrainSftRequest if args.kind == "sft" else trainer_pb2.TrainRlRequest
    params = {f.name: getattr(args, f.name) for f in message.DESCRIPTOR.fields}
    job = (client.train_sft if args.kind == "sft" else client.train_rl)(**params)
    _out(f"job {job.job_id} {job.status} ({job.kind})")
    return watch_job(client, job.job_id) if args.watch else 0


def jobs(client: Client, args) -> int:
    rows = [("JOB", "KIND", "STATUS", "STEP", "ADAPTER", "ERROR")]
    for job in client.jobs():
        step = f"{job.progress.step}/{job.progress.total_steps}" if job.progress.total_steps else "-"
        rows.append((job.job_id, job.kind, job.status, step, job.adapter_version or "-", job.error[:60]))
    _out(*table(rows))
    return 0


def watch(client: Client, args) -> int:
    return watch_job(client, args.job_id)


def cancel(client: Client, args) -> int:
    job = client.cancel(args.job_id)
    _out(f"job {job.job_id} {job.status}")
    return 0


def status(client: Client, args) -> int:
    health = client.health()
    _out(*table([("SERVICE", "ADDRESS", "HEALTH")] + [(h.name, h.address, h.status) for h in health]), "")
    if next(h for h in health if h.name == "llm").status == "UNAVAILABLE":
        return 1
    llm = client.status()
    _out(f"base model: {llm.base_model} ({'loaded' if llm.loaded else 'not loaded: ' + llm.reason})")
    if llm.base_model_note:
        _out(f"  why: {llm.base_model_note}")
    _out(*table([("ADAPTER", "VERSION", "LOADED", "TRAINED ON", "NOTE")] +
                 [(a.name, a.version or "-", "yes" if a.loaded else "no", a.base_model or "-", a.error or "")
                  for a in llm.adapters]))
    return 0 if all(h.status == "SERVING" for h in health) else 1


def _add_message_flags(parser: argparse.ArgumentParser, message) -> None:
    """One flag per field of a request message: the contract's own fields, validated by the service."""
    kinds = {FieldDescriptor.CPPTYPE_INT32: int, FieldDescriptor.CPPTYPE_INT64: int,
             FieldDescriptor.CPPTYPE_DOUBLE: float, FieldDescriptor.CPPTYPE_FLOAT: float,
             FieldDescriptor.CPPTYPE_STRING: str}
    for field in message.DESCRIPTOR.fields:
        flag = "--" + field.name.replace("_", "-")
        if field.cpp_type == FieldDescriptor.CPPTYPE_BOOL:
            parser.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction, default=None)
        else:
            parser.add_argument(flag, dest=field.name, type=kinds[field.cpp_type], default=None,
                                help=f"{message.DESCRIPTOR.name}.{field.name} (unset: the service's default)")


def _add_llm_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("question", nargs="?", help="QA mode: the question")
    parser.add_argument("--context", help="QA mode: the passage to answer from")
    parser.add_argument("--text", help="text mode instead: the text to continue")
    parser.add_argument("-n", "--length", type=int, help="text mode: about how many tokens to continue for")
    parser.add_argument("--adapter", help="default: rl, falling back to sft, base (the llm service names the choices)")
    parser.add_argument("--max-new-tokens", type=int)
    parser.add_argument("--temperature", type=float, help="0 (default) is greedy")
    parser.add_argument("--seed", type=int)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="textgen", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    root.add_argument("--timeout", type=float, default=60.0, help="seconds per call (default 60)")
    commands = root.add_subparsers(dest="command", required=True)

    command = commands.add_parser("generate", help="the bigram model or the LSTM")
    command.add_argument("model", choices=["bigram", "rnn"])
    command.add_argument("start_word")
    command.add_argument("-n", "--length", type=int)
    command.add_argument("--temperature", type=float, help="rnn only")
    command.add_argument("--seed", type=int)
    command.set_defaults(run=generate)

    for name, run, summary in (("ask", ask, "the LLM's answer"), ("stream", stream, "the LLM's answer, as it comes")):
        command = commands.add_parser(name, help=summary)
        _add_llm_flags(command)
        command.set_defaults(run=run)

    command = commands.add_parser("train", help="queue an SFT or RL job")
    kinds = command.add_subparsers(dest="kind", required=True)
    for kind, message in (("sft", trainer_pb2.TrainSftRequest), ("rl", trainer_pb2.TrainRlRequest)):
        job = kinds.add_parser(kind, help=f"fields of {message.DESCRIPTOR.name}")
        _add_message_flags(job, message)
        job.add_argument("--watch", action="store_true", help="follow the job with a progress bar until it ends")
        job.set_defaults(run=train)

    commands.add_parser("jobs", help="every training job, newest first").set_defaults(run=jobs)
    for name, run, summary in (("watch", watch, "follow a job until it ends"), ("cancel", cancel, "cancel a job")):
        command = commands.add_parser(name, help=summary)
        command.add_argument("job_id")
        command.set_defaults(run=run)
    commands.add_parser("status", help="health, base model and adapters").set_defaults(run=status)
    adapter_commands.add_to(commands)
    fine_tuning_commands.add_to(commands)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command in ("ask", "stream") and (args.question is None) == (args.text is None):
        parser().error(f"{args.command} takes a question or --text, one of them")
    if args.command == "adapters" and args.action != "list" and not args.name:
        parser().error(f"adapters {args.action} takes an adapter's NAME")
    if args.command == "adapters" and args.action == "serve" and not args.version:
        parser().error("adapters serve takes NAME and VERSION")
    if getattr(args, "action", None) in getattr(args, "needs_target", ()) and not args.target:
        parser().error(f"{args.command} {args.action} takes a {'path' if args.action == 'upload' else 'name or id'}")
    if args.command == "fine-tune" and args.action == "create" and not args.training_file:
        parser().error("fine-tune create takes --training-file (a file id, or a JSONL file to upload)")
    if args.command == "fine-tune" and args.action == "create":  # the method's flags, its grader read
        args.request = fine_tuning_methods.create_request(args, parser().error)
    with Client(timeout=args.timeout) as client:
        try:
            return args.run(client, args)
        except TextgenError as error:
            fields = "".join(f"; {field}: {description}" for field, description in error.field_violations
                             if description not in error.message)
            print(f"textgen: {error.service} at {client.addresses[error.service]}: {error}{fields}",
                  file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130


if __name__ == "__main__":
    sys.exit(main())
