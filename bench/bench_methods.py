"""Preference and reinforcement fine-tuning on your own data, end to end, in one command each: the embedded model
(SmolLM2-135M-Instruct) served by the llm service and trained by the trainer behind the real gateway, driven by the
official `openai` client. (make embedded-model first; a quiet machine.)

    python bench/bench_methods.py dpo [--epochs 3] [--beta 0.1] [--learning-rate-multiplier 1]
    python bench/bench_methods.py reinforcement [--compute-multiplier 0.5] [--epochs 1] [--skip-uniform-groups]
                                                [--examples N]   (the training file's first N lines only)

dpo: data/concise_replies (a reply is one sentence of at most 25 words, devtools/concise_replies.py): the base
model's behaviour rate on its 50 held-out questions, greedy; its preference pairs trained with DPO: the job's wall
time and its last steps' reward accuracy; the fine-tuned model's rate on the same questions. Target: +40 points.

reinforcement: data/graded_answers (devtools/graded_answers.py: the prompts, their string_check grader and its
pass rule): the base model's pass rate on the 50 held-out prompts, greedy; GRPO on the training prompts with the
data set's grader: the job's wall time, the share of flat groups (all answers scored alike) over its steps and the
prompts skipped; the fine-tuned model's pass rate. Target: +15 points in under 20 minutes.

Prints each figure beside the CPU's name and flags."""
import argparse
import collections
import json
import statistics

from devtools import concise_replies, graded_answers
from devtools.fine_tuning_system import cpu, embedded_system, greedy_replies, metrics, run_job
from devtools.json_replies import read_jsonl


def looping(reply: str) -> bool:
    """Whether a reply says the same four words three times or more: a model caught in a loop."""
    words = reply.lower().split()
    runs = collections.Counter(tuple(words[i:i + 4]) for i in range(len(words) - 3))
    return bool(runs) and max(runs.values()) >= 3


def dpo_rate(client, model: str) -> dict:
    """The rule's rate, and how many short replies dodge the question: a reply that is itself a question (the rule
    passes one, as one sentence), or the question repeated; and how many loop."""
    rows = read_jsonl(concise_replies.HELDOUT)
    replies = greedy_replies(client, model, [row["messages"] for row in rows], concise_replies.HELDOUT_NEW_TOKENS)
    questions = [row["messages"][-1]["content"] for row in rows]
    asked = sum(reply.strip().endswith("?") for reply in replies)
    repeated = sum(" ".join(reply.lower().split()) == " ".join(question.lower().split())
                   for reply, question in zip(replies, questions))
    return {**concise_replies.score(replies), "replies_ending_in_a_question_mark": asked,
            "replies_repeating_the_question": repeated, "replies_looping": sum(map(looping, replies)),
            "replies": replies}


def reinforcement_rate(client, model: str) -> dict:
    rows = read_jsonl(graded_answers.HELDOUT)
    replies = greedy_replies(client, model, [row["messages"] for row in rows], graded_answers.NEW_TOKENS)
    # How often the keyword is said: a grader that only asks for it once can be paid by saying it over and over.
    said = [reply.lower().count(row[graded_answers.REFERENCE_FIELD].lower()) for reply, row in zip(replies, rows)]
    return {**graded_answers.score(zip(replies, rows)), "mean_keyword_count": round(statistics.mean(said), 2),
            "replies": replies}


def method(args) -> tuple[dict, object]:
    """(the job's method object, the function that rates a model on the held-out set)."""
    if args.method == "dpo":
        hyperparameters = {"n_epochs": args.epochs or 3, "beta": args.beta,
                           "learning_rate_multiplier": args.learning_rate_multiplier}
        return {"type": "dpo", "dpo": {"hyperparameters": hyperparameters}}, dpo_rate
    hyperparameters = {"n_epochs": args.epochs or 1, "compute_multiplier": args.compute_multiplier,
                       "learning_rate_multiplier": args.learning_rate_multiplier, "temperature": args.temperature,
                       "max_completion_tokens": graded_answers.NEW_TOKENS, "batch_size": args.batch_size,
                       "skip_uniform_groups": args.skip_uniform_groups}
    return {"type": "reinforcement", "reinforcement": {"grader": graded_answers.GRADER,
                                                       "hyperparameters": hyperparameters}}, reinforcement_rate


def shown(rated: dict) -> dict:
    return {key: value for key, value in rated.items() if key != "replies"} | {"first reply": rated["replies"][0]}


def describe(job, steps: list[dict]) -> str:
    if not steps:
        return "no metrics"
    last = steps[-max(1, len(steps) // 10):]  # the last tenth of the steps
    if "train_reward_accuracy" in steps[0]:
        return (f"{len(steps)} steps; reward accuracy over the last {len(last)}: "
                f"{statistics.mean(m['train_reward_accuracy'] for m in last):.2f}, margin "
                f"{statistics.mean(m['train_reward_margin'] for m in last):.2f}")
    flat = statistics.mean(m["frac_reward_zero_std"] for m in steps)
    skipped = sum(m.get("skipped_prompts", 0) * job.method.reinforcement.hyperparameters.batch_size for m in steps)
    trained_flat = [m["trained_flat"] for m in steps if "trained_flat" in m]
    shown = f", trained groups flat {statistics.mean(trained_flat):.0%}" if trained_flat else ""
    first = statistics.mean(m["reward"] for m in steps[:len(last)])
    return (f"{len(steps)} steps; groups sampled with all answers scored alike: {flat:.0%}; prompts skipped: "
            f"{skipped:.0f}{shown}; mean reward, first and last tenth of the steps: {first:.2f}, "
            f"{statistics.mean(m['reward'] for m in last):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("method", choices=("dpo", "reinforcement"))
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--learning-rate-multiplier", type=float, default=1.0)
    parser.add_argument("--compute-multiplier", type=float, default=0.5)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--skip-uniform-groups", action="store_true")
    parser.add_argument("--examples", type=int, help="train on the training file's first N lines only")
    args = parser.parse_args()
    chosen, rate = method(args)
    data = concise_replies if args.method == "dpo" else graded_answers
    print(f"CPU: {cpu()}", flush=True)
    with embedded_system() as (client, _, _, _):
        base = rate(client, "base")
        print(f"base model: {shown(base)}", flush=True)
        lines = data.TRAIN.read_bytes().splitlines(keepends=True)[:args.examples]
        uploaded = client.files.create(file=("train.jsonl", b"".join(lines)), purpose="fine-tune")
        job, seconds = run_job(client, model="base", training_file=uploaded.id, method=chosen, suffix=args.method)
        assert job.status == "succeeded", job.error
        print(f"job: {job.id} {job.method.model_dump(exclude_none=True)} in {seconds:.0f} s; "
              f"{describe(job, metrics(client, job.id))}", flush=True)
        tuned = rate(client, job.fine_tuned_model)
        print(f"{job.fine_tuned_model}: {shown(tuned)}", flush=True)
        key = "behaviour_rate" if args.method == "dpo" else "pass_rate"
        print(f"{key}: {base[key]:.0%} -> {tuned[key]:.0%} ({(tuned[key] - base[key]) * 100:+.0f} points, target "
              f"{'+40' if args.method == 'dpo' else '+15'}); job {seconds / 60:.1f} min", flush=True)
        print("the fine-tuned model's replies, one a line:")
        for reply in tuned["replies"]:
            print(json.dumps(reply))


if __name__ == "__main__":
    main()
