"""TokenizerService: vLLM's /tokenize and /detokenize, for clients that count tokens before they send. A prompt is
tokenized as the tokenizer does it (with its special tokens unless told otherwise). Chat messages are tokenized
exactly as /v1/chat/completions reads them: through the model's chat template, or the plain template. Every model
of /v1/models shares the base model's tokenizer. So `model` only has to name one that is served."""
import grpc
from textgen.v1 import openai_pb2, openai_pb2_grpc

from services.common.errors import Violations
from services.common.callers import caller
from services.common.chat_prompt import TemplateRefused, chat_prompt
from services.llm.openai.models import ServedModels
from services.llm.openai.messages import check_length, read_messages
from services.llm.planner import Planner


def _tokenize(message, tokenizer, window: int) -> openai_pb2.TokenizeResponse | Violations:
    if message.HasField("prompt"):
        special = message.add_special_tokens if message.HasField("add_special_tokens") else True
        ids = tokenizer(message.prompt, add_special_tokens=special)["input_ids"]
    else:
        violations = Violations()
        messages = read_messages(message, violations)
        if violations:
            return violations
        opened = message.add_generation_prompt if message.HasField("add_generation_prompt") else True
        try:
            ids, _ = chat_prompt(tokenizer, messages, opened)
        except TemplateRefused as error:
            violations.add("messages", str(error))
            return violations
        if message.HasField("add_special_tokens") and message.add_special_tokens \
                and tokenizer.bos_token_id is not None and ids[:1] != [tokenizer.bos_token_id]:
            ids = [tokenizer.bos_token_id, *ids]
    texts = [tokenizer.decode([token]) for token in ids] if message.return_token_strs else []
    return openai_pb2.TokenizeResponse(count=len(ids), max_model_len=window, tokens=ids, token_strs=texts)


def _detokenize(ids: list[int], tokenizer, window: int) -> str:
    return tokenizer.decode(ids)


class TokenizerServicer(openai_pb2_grpc.TokenizerServiceServicer):
    def __init__(self, planner: Planner, models: ServedModels, unavailable_reason) -> None:
        self.planner, self.models, self.unavailable_reason = planner, models, unavailable_reason

    async def _check_model(self, model: str, context) -> None:
        if not self.planner.ready:
            await context.abort(grpc.StatusCode.UNAVAILABLE, self.unavailable_reason())
        who = caller(context)
        if model and self.models.named(model, who) is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, self.models.why_missing(model, who))

    async def Tokenize(self, message, context):
        violations = Violations()
        if message.HasField("prompt") == bool(message.messages):
            violations.add("prompt", "exactly one of prompt and messages must be set (got "
                                     f"{'both' if message.HasField('prompt') else 'neither'})")
        elif message.HasField("prompt"):
            check_length("prompt", len(message.prompt), violations)
        await violations.abort_if_any(context)
        await self._check_model(message.model, context)
        tokenized = await self.planner.run(_tokenize, message)
        if isinstance(tokenized, Violations):
            await tokenized.abort_if_any(context)
        return tokenized

    async def Detokenize(self, message, context):
        await self._check_model(message.model, context)
        vocabulary = len(self.planner.tokenizer)
        violations = Violations()
        for index, token in enumerate(message.tokens):
            if token >= vocabulary:
                violations.add(f"tokens[{index}]", f"tokens[{index}] must be a token id below {vocabulary}, the "
                                                   f"size of the model's vocabulary (got {token})")
                break
        await violations.abort_if_any(context)
        return openai_pb2.DetokenizeResponse(prompt=await self.planner.run(_detokenize, list(message.tokens)))
