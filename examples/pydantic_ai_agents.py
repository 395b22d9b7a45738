"""Two Pydantic AI agents, traced by Pydantic AI's own OpenTelemetry instrumentation, offline.

    make demo                                          # the exporter on 127.0.0.1:9477, or, priced:
    .venv/bin/agency-telemetry demo --config examples/pydantic_ai.yaml
    .venv/bin/python examples/pydantic_ai_agents.py   # --url, else $OTEL_EXPORTER_OTLP_ENDPOINT

A "triage" agent looks a ticket up with a tool and delegates the question to a "researcher"
agent, which it calls as a tool (the researcher searches the docs with a tool of its own). Both
run on local fake models (Pydantic AI's FunctionModel: provider ``function``, models
``fake-large`` and ``fake-small``), so nothing leaves the machine and no API key is needed. The
fake models answer from a script and report token usage as real ones do: the words of the
conversation in (the history before the newest request cached), the words of the answer out
(fake-large reasons first: as many reasoning tokens again, reported as OpenAI's model does).

Three triage runs: ticket 17 is answered with the researcher's help; ticket 404 does not exist,
so the lookup tool fails (ToolFailed: the model is told and answers anyway); for ticket 42 the
researcher's provider refuses the request with a 429 (it allows two), which fails the
researcher's run, the ask_researcher tool call and the triage run.

Pydantic AI makes GenAI-convention spans (``invoke_agent <agent>``, ``chat <model>``,
``execute_tool <tool>``, format version 6); the OpenTelemetry SDK's OTLP/HTTP exporter (protobuf,
gzip, batched) sends them to ``<url>/v1/traces``. The exporter counts per agent: three triage
tasks (one failed, ``rate_limited``) and two researcher tasks (one failed), their LLM requests
(one failed) and tokens by model, the tool calls of ``lookup_ticket``, ``ask_researcher`` and
``search_docs`` (one lookup and one delegation failed). With examples/pydantic_ai.yaml the fake
models are priced (agency_agent_llm_cost_usd_total) and the agents typed orchestrator and
researcher; without it they are ``unknown`` and unpriced. It prints each run's answer, what the
fake models reported, and exits 1 if an export failed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pydantic_ai
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from pydantic_ai import Agent, ModelHTTPError, ModelRateLimitError, RunContext, ToolFailed
from pydantic_ai.capabilities import Instrumentation
from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.instrumented import InstrumentationSettings
from pydantic_ai.usage import RequestUsage

SERVICE = "pydantic-ai-agents"
PROVIDER = "function"  # what Pydantic AI reports as gen_ai.provider.name for a FunctionModel
TRIAGE_MODEL = "fake-large"
RESEARCHER_MODEL = "fake-small"
RESEARCHER_REQUESTS_ALLOWED = 2  # the researcher's provider answers 429 after these
TICKETS = {17: "the nightly export takes four hours", 42: "single sign-on rejects new users"}
DOCS = "Exports run in one thread unless export.workers is set; eight workers suit most installations."
RUNS = ("ticket 17: why is the export slow?", "ticket 404: please help", "ticket 42: why can new users not log in?")

Script = Callable[[list[ModelMessage]], ModelResponse]


@dataclass
class FakeModel:
    """A scripted model whose every answer reports its token usage, as Pydantic AI's models do:
    input tokens (the words of the conversation so far), of which cached those of the history
    before the newest request, and output tokens (the words of the answer), of which reasoning,
    for a model that ``thinks``, one per word of the answer (in ``details``, as OpenAI's model
    reports them). ``responses`` keeps the answers, ``refused`` counts the requests its provider
    refused (429)."""

    name: str
    script: Script
    thinks: bool = False
    allowed_requests: int | None = None  # past this many, the provider answers 429
    responses: list[ModelResponse] = field(default_factory=list)
    refused: int = 0

    def model(self) -> FunctionModel:
        return FunctionModel(self.respond, model_name=self.name)

    @property
    def requests(self) -> int:
        return len(self.responses) + self.refused

    async def respond(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if self.allowed_requests is not None and self.requests >= self.allowed_requests:
            self.refused += 1
            body = {"error": "rate limit exceeded, retry in 20 s"}  # raised as Pydantic AI's models raise a 429
            raise ModelHTTPError.for_category(ModelRateLimitError, status_code=429, model_name=self.name, body=body)
        response = self.script(messages)
        answer = sum(_words(part) for part in response.parts)
        reasoning = answer if self.thinks else 0
        response.usage = RequestUsage(
            input_tokens=sum(_words(part) for message in messages for part in message.parts),
            cache_read_tokens=sum(_words(part) for message in messages[:-1] for part in message.parts),
            output_tokens=answer + reasoning,
            details={"reasoning_tokens": reasoning} if reasoning else {},
        )
        self.responses.append(response)
        return response


def _words(part: Any) -> int:
    """A part's size in "tokens": the words of its content or tool arguments."""
    text = getattr(part, "content", None) or getattr(part, "args", None) or ""
    return len(re.findall(r"\w+", str(text)))


def _this_run(messages: list[ModelMessage]) -> tuple[str, dict[str, ToolReturnPart]]:
    """The run's prompt and the tool results the model has seen so far, by tool."""
    parts = [part for message in messages if isinstance(message, ModelRequest) for part in message.parts]
    prompt = next(str(part.content) for part in parts if part.part_kind == "user-prompt")
    returns = {part.tool_name: part for part in parts if isinstance(part, ToolReturnPart)}
    return prompt, returns


def triage_script(messages: list[ModelMessage]) -> ModelResponse:
    """Look the ticket up; if it exists, ask the researcher; then answer."""
    prompt, returns = _this_run(messages)
    ticket = int(prompt.split(":")[0].removeprefix("ticket "))  # "ticket 17: the question"
    if "lookup_ticket" not in returns:
        return ModelResponse(parts=[ToolCallPart("lookup_ticket", {"ticket": ticket})])
    if returns["lookup_ticket"].outcome == "failed":
        return ModelResponse(parts=[TextPart(f"Ticket {ticket} does not exist; please check the number.")])
    if "ask_researcher" not in returns:
        question = f"{returns['lookup_ticket'].content}: {prompt.split(':', 1)[1].strip()}"
        return ModelResponse(parts=[ToolCallPart("ask_researcher", {"question": question})])
    return ModelResponse(parts=[TextPart(f"Ticket {ticket}: {returns['ask_researcher'].content}")])


def researcher_script(messages: list[ModelMessage]) -> ModelResponse:
    """Search the docs, then answer from what was found."""
    prompt, returns = _this_run(messages)
    if "search_docs" not in returns:
        return ModelResponse(parts=[ToolCallPart("search_docs", {"query": prompt})])
    return ModelResponse(parts=[TextPart(f"From the docs: {returns['search_docs'].content}")])


@dataclass
class Fleet:
    triage: Agent[None, str]
    researcher: Agent[None, str]
    models: dict[str, FakeModel]  # by agent name


def build_fleet(
    tracer_provider: TracerProvider, *, aggregated_usage_names: bool = True, include_content: bool = True
) -> Fleet:
    """The two agents, instrumented with the newest GenAI conventions Pydantic AI offers
    (format version 6). Agent spans repeat their run's usage as ``gen_ai.aggregated_usage.*``
    (Pydantic AI's default) or, with ``aggregated_usage_names=False``, as ``gen_ai.usage.*``;
    the exporter counts tokens from ``chat`` spans only, so either way nothing is counted twice.
    ``include_content=False`` keeps prompts, answers and error messages out of the spans."""
    settings = InstrumentationSettings(
        tracer_provider=tracer_provider,
        meter_provider=NoOpMeterProvider(),  # the exporter reads spans; no OTLP metrics are sent
        include_content=include_content,
        version=6,
        use_aggregated_usage_attribute_names=aggregated_usage_names,
    )
    triage_model = FakeModel(TRIAGE_MODEL, triage_script, thinks=True)
    researcher_model = FakeModel(RESEARCHER_MODEL, researcher_script, allowed_requests=RESEARCHER_REQUESTS_ALLOWED)
    researcher = Agent(
        researcher_model.model(),
        name="researcher",
        instructions="Answer from the documentation.",
        capabilities=[Instrumentation(settings)],
    )
    triage = Agent(
        triage_model.model(),
        name="triage",
        instructions="Look the ticket up, ask the researcher, answer the user.",
        capabilities=[Instrumentation(settings)],
    )

    @researcher.tool_plain
    def search_docs(query: str) -> str:
        return DOCS

    @triage.tool_plain
    def lookup_ticket(ticket: int) -> str:
        if ticket not in TICKETS:
            raise ToolFailed(f"ticket {ticket} not found")
        return TICKETS[ticket]

    @triage.tool
    async def ask_researcher(ctx: RunContext[None], question: str) -> str:
        result = await researcher.run(question, usage=ctx.usage)  # the researcher as a tool of triage
        return result.output

    return Fleet(triage, researcher, {"triage": triage_model, "researcher": researcher_model})


class Outcome(NamedTuple):
    prompt: str
    answer: str | None
    error: ModelHTTPError | None  # what ended a failed run


async def run_fleet(fleet: Fleet, prompts: Sequence[str] = RUNS) -> list[Outcome]:
    """Each prompt as a triage run."""
    outcomes = []
    for prompt in prompts:
        try:
            result = await fleet.triage.run(prompt)
            outcomes.append(Outcome(prompt, result.output, None))
        except ModelHTTPError as exc:
            outcomes.append(Outcome(prompt, None, exc))
    return outcomes


class CountingExporter(SpanExporter):
    """The OTLP exporter, counting spans and failed exports."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.spans = 0
        self.failed = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.inner.export(spans)
        self.spans += len(spans)
        self.failed += result is not SpanExportResult.SUCCESS
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()


def otlp_exporter(url: str) -> OTLPSpanExporter:
    return OTLPSpanExporter(endpoint=f"{url.rstrip('/')}/v1/traces", compression=Compression.Gzip, timeout=10)


def tracer_provider(exporter: SpanExporter, max_export_batch_size: int = 512) -> TracerProvider:
    """Spans exported in batches, as an application would; the runs here are short, so by default
    they all go in one request at shutdown, each agent span after its children."""
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=max_export_batch_size))
    return provider


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9477")
    parser.add_argument("--url", default=default, help=f"the exporter (default: {default})")
    args = parser.parse_args()
    pydantic_ai.BANNER_ENABLED = False  # the output is the summary below
    exporter = CountingExporter(otlp_exporter(args.url))
    provider = tracer_provider(exporter)
    fleet = build_fleet(provider)
    for prompt, answer, error in asyncio.run(run_fleet(fleet)):
        print(f"{prompt!r} -> {answer if error is None else f'failed: {type(error).__name__} {error.status_code}'}")
    provider.shutdown()  # exports what is left
    for agent, model in fleet.models.items():
        tokens_in = sum(r.usage.input_tokens for r in model.responses)
        tokens_out = sum(r.usage.output_tokens for r in model.responses)
        refused = f" ({model.refused} refused)" if model.refused else ""
        print(
            f"{agent}: {model.requests} requests to {PROVIDER}/{model.name}{refused}, {tokens_in}+{tokens_out} tokens"
        )
    if exporter.failed:
        print(f"{exporter.failed} exports to {args.url}/v1/traces failed", file=sys.stderr)
        return 1
    print(f"{exporter.spans} spans sent to {args.url}/v1/traces")
    return 0


if __name__ == "__main__":
    sys.exit(main())
