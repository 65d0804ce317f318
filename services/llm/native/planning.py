"""From an LlmGenerateRequest message to the `Plan` the engine decodes: validation, the prompt, the forced lead of
the answer, the token budget, and the context trimmed to the model's window (services/llm/planner.py has what the
OpenAI-compatible API's planning shares)."""
import dataclasses
from typing import Annotated

from services.common import adapters
from services.common.errors import Violations, check_start_word, shown
from services.common.limits import Bound, from_request, out_of_range
from services.common.prompts import PREFIX
from services.llm import constraints
from services.llm.endings import stop_at
from services.llm.planner import Sampling, check_context, check_question, encoder, json_matcher, plan_qa
from services.llm.request import Plan
from services.llm.states import Mode


@dataclasses.dataclass(frozen=True)
class LlmParams:
    max_new_tokens: Annotated[int, Bound(1, 512)] = 80  # QA mode's budget; in text mode it caps length when set
    length: Annotated[int, Bound(1, 512)] = 40  # text mode's budget
    temperature: Annotated[float, Bound(0, 2.0)] = 0.0  # 0: greedy


def validate(message, violations: Violations) -> None:
    """An LlmGenerateRequest's fields, checked."""
    has_question, has_start = message.HasField("question"), message.HasField("start_word")
    if has_question == has_start:
        violations.add("question", "exactly one of question (QA mode) and start_word (text mode) must be set"
                       f" (got {'both' if has_question else 'neither'})")
    if has_question:
        check_question(message.question, violations)
    if has_start:
        check_start_word(violations, message.start_word)
    if has_question and message.HasField("json_schema"):
        violations.add("json_schema", "json_schema is for text mode (start_word): QA mode's answers keep the answer "
                                      "format")
    check_context(message.context, violations)
    violations.add_all(out_of_range(from_request(LlmParams, message)))
    if message.adapter not in ("", adapters.BASE) and not adapters.is_valid_name(message.adapter):
        violations.add("adapter", "adapter must be empty (the service chooses by use_rl_model), 'base', or an "
                                  "adapter's name: letters, digits, '_', '-' and '.', at most 64 characters "
                                  f"(got {shown(message.adapter)})")


def token_budget(message) -> int:
    """QA mode: max_new_tokens (80). Text mode: length (40), capped by max_new_tokens when that is set too."""
    if message.HasField("question"):
        return message.max_new_tokens if message.HasField("max_new_tokens") else LlmParams.max_new_tokens
    length = message.length if message.HasField("length") else LlmParams.length
    return min(length, message.max_new_tokens) if message.HasField("max_new_tokens") else length


def plan(message, tokenizer, window: int) -> Plan | Violations:
    """The plan to decode for a validated LlmGenerateRequest, or the violations when it cannot fit the model's
    window at all."""
    sampling = Sampling(temperature=message.temperature if message.HasField("temperature") else LlmParams.temperature,
                        seed=message.seed if message.HasField("seed") else None)
    if message.HasField("question"):
        return plan_qa(message.question, message.context, token_budget(message), sampling, tokenizer, window)
    budget_field = "length" if message.HasField("length") or not message.HasField("max_new_tokens") \
        else "max_new_tokens"
    planned = plan_text(message.start_word, token_budget(message), budget_field, sampling, tokenizer, window)
    if message.HasField("json_schema") and isinstance(planned, Plan):
        return held_to_json(planned, constraints.from_struct(message.json_schema), tokenizer)
    return planned


def held_to_json(planned: Plan, schema: dict, tokenizer) -> Plan | Violations:
    """Text mode held to `schema`: the answer is the JSON alone, which ends where the JSON does."""
    violations = Violations()
    grammar = json_matcher(schema, "json_schema", tokenizer, violations)
    return violations or dataclasses.replace(planned, grammar=grammar, lead="", ending=stop_at(()))


def plan_text(start_word: str, budget: int, budget_field: str, sampling: Sampling, tokenizer, window: int) \
        -> Plan | Violations:
    """Text continued from the forced lead and `start_word`; `budget_field` is the field to blame when too long."""
    lead = f"{PREFIX} {' '.join(start_word.split())}"
    # Text mode has no prompt of its own: the document starts at <|endoftext|>, then the forced lead.
    prompt_ids = [tokenizer.eos_token_id] + encoder(tokenizer)(lead)
    if len(prompt_ids) + budget > window:
        violations = Violations()
        violations.add(budget_field, f"{budget_field} must be at most {window - len(prompt_ids)} for this start_word "
                                     f"(the model's window is {window} tokens)")
        return violations
    return Plan(mode=Mode.TEXT, prompt_ids=prompt_ids, lead=lead, max_new_tokens=budget,
                **dataclasses.asdict(sampling))
