// Package telemetry sets up SentinelDF's logs, metrics and traces.
//
//   - Logs are JSON lines from log/slog. Handler adds the request id, org id
//     and the trace and span ids found in a record's context, and redacts
//     attributes whose names say they hold secrets.
//   - Metrics are Prometheus collectors registered on a registry the caller
//     injects (NewMetrics); nothing is registered globally.
//   - Traces are OpenTelemetry spans. NewTracerProvider always returns a real
//     SDK provider, so spans have ids that logs can carry, and exports them
//     over OTLP/HTTP only when an endpoint is configured. Inject and Extract
//     carry W3C trace context through job arguments.
package telemetry
