"""A chat with tools as the prompt the model reads. A chat template that writes tools itself (it reads `tools`, as
Qwen2.5's and SmolLM3's do) gets them; any other model (the embedded SmolLM2, GPT-2's plain template) is told of them
in the system message, in the words below. Either way earlier calls are shown as the blocks an answer writes
(services/llm/openai/tools.py) and each tool's result as the user's turn, in <tool_response> tags."""
import json
import re

from services.llm.openai.tools import ToolUse

SYSTEM_BLOCK = """# Tools

You may call one or more functions to answer the user. Their signatures are within <tools></tools>:
<tools>
{tools}
</tools>

To call a function, answer with its name and arguments as a JSON object within <tool_call></tool_call> tags:
<tool_call>
{{"name": <function-name>, "arguments": <arguments-object>}}
</tool_call>"""
_READS_TOOLS = re.compile(r"\btools\b")


def template_writes_tools(tokenizer) -> bool:
    return bool(tokenizer.chat_template) and _READS_TOOLS.search(tokenizer.chat_template) is not None


def tool_response(text: str) -> str:
    return f"<tool_response>\n{text}\n</tool_response>"


def with_tools(messages: list[tuple[str, str]], use: ToolUse | None, tokenizer) \
        -> tuple[list[tuple[str, str]], list[dict] | None]:
    """The (role, text) messages to put through the template, and the tools for a template that writes them."""
    if use is None:
        return messages, None
    if template_writes_tools(tokenizer):
        return messages, use.offered
    block = SYSTEM_BLOCK.format(tools="\n".join(json.dumps(tool) for tool in use.offered))
    if messages and messages[0][0] == "system":
        return [("system", f"{messages[0][1]}\n\n{block}"), *messages[1:]], None
    return [("system", block), *messages], None
