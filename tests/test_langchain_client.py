"""A second client from the ecosystem, beside the official `openai` one: LangChain's ChatOpenAI through Envoy on the
tiny random GPT-2, its tools bound with bind_tools. LangChain reads the calls into its own tool_calls (arguments
parsed into a dict), unary and streamed alike, and its structured output rides on response_format."""
import pydantic
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_openai import ChatOpenAI

from tests.openai_service import gateway, llm, metrics_port, models_dir  # noqa: F401


class GetWeather(pydantic.BaseModel):
    """The weather forecast of a city."""
    city: str = pydantic.Field(max_length=12)  # the random model's strings run on: bounded, a call ends in time


class Capital(pydantic.BaseModel):
    country: str
    city: str


def chat_model(gateway, **settings) -> ChatOpenAI:
    return ChatOpenAI(base_url=f"{gateway.url}/v1", api_key="unused", model="base", temperature=0, max_retries=0,
                      timeout=60, **settings)


def test_bound_tools_answer_with_calls_langchain_reads(gateway):
    bound = chat_model(gateway, max_tokens=200).bind_tools([GetWeather], tool_choice="GetWeather",
                                                            parallel_tool_calls=False)
    question = [HumanMessage("What is the weather in Paris?")]
    answer = bound.invoke(question)
    [call] = answer.tool_calls
    assert call["name"] == "GetWeather" and len(call["args"]["city"]) <= 12 and call["id"].startswith("call_")
    streamed = None
    for chunk in bound.stream(question):
        streamed = chunk if streamed is None else streamed + chunk
    assert [(c["name"], c["args"]) for c in streamed.tool_calls] == [(call["name"], call["args"])]
    answered = bound.invoke([*question, answer, ToolMessage("sunny", tool_call_id=call["id"])])
    assert answered.response_metadata["finish_reason"] in ("tool_calls", "length", "stop")


def test_structured_output_rides_on_response_format(gateway):
    structured = chat_model(gateway, max_tokens=80).with_structured_output(Capital, method="json_schema")
    assert isinstance(structured.invoke("The capital of France?"), Capital)
