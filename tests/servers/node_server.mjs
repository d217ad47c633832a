// A stdio MCP server in Node (@modelcontextprotocol/sdk) traced with OpenTelemetry JS, exporting OTLP/HTTP to
// OTEL_EXPORTER_OTLP_ENDPOINT (mcp-tracing collect): what a non-Python server of the agent's looks like.
// OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf picks the protobuf exporter, else JSON; OTEL_EXPORTER_OTLP_COMPRESSION
// is read by the exporters themselves.
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, propagation } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter as JsonExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as ProtobufExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { z } from "zod";

const Exporter = process.env.OTEL_EXPORTER_OTLP_PROTOCOL === "http/protobuf" ? ProtobufExporter : JsonExporter;
const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({ "service.name": process.env.OTEL_SERVICE_NAME || "node-server" }),
  spanProcessors: [new BatchSpanProcessor(new Exporter())],
});
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
const tracer = provider.getTracer("node-server");

// The lines a non-Python server needs to join the agent's trace: the context in the request's _meta
// (mcp_tracing's client puts it there), else the one its spawner put in TRACEPARENT.
function parentOf(meta) {
  const carrier = meta && meta.traceparent ? meta : { traceparent: process.env.TRACEPARENT ?? "" };
  return propagation.extract(ROOT_CONTEXT, carrier);
}

const server = new McpServer({ name: "node-math", version: "1.0.0" });
server.registerTool(
  "add",
  { description: "a + b", inputSchema: { a: z.number(), b: z.number() } },
  async ({ a, b }, extra) => {
    const attributes = { "mcp.method.name": "tools/call", "gen_ai.tool.name": "add" };
    const span = tracer.startSpan("tools/call add", { kind: SpanKind.SERVER, attributes }, parentOf(extra._meta));
    try {
      return { content: [{ type: "text", text: String(a + b) }] };
    } finally {
      span.setStatus({ code: SpanStatusCode.OK });
      span.end();
    }
  },
);

let closing = false;
async function close() {
  if (closing) return;
  closing = true;
  await provider.shutdown(); // exports what is batched before the process ends
  process.exit(0);
}
process.stdin.on("end", close);
process.on("SIGTERM", close);
await server.connect(new StdioServerTransport());
