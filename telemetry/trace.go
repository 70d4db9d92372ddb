package telemetry

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// TraceConfig configures tracing.
type TraceConfig struct {
	// ServiceName names this process in traces ("sentineldf-api").
	ServiceName string
	// OTLPEndpoint is an OTLP/HTTP endpoint ("localhost:4318"); "" exports
	// nothing (spans still get ids for logs).
	OTLPEndpoint string
	// Insecure sends OTLP over plain HTTP.
	Insecure bool
	// SampleRatio is the fraction of new traces sampled (parent-based);
	// 0 means 1.
	SampleRatio float64
}

// NewTracerProvider returns a tracer provider and its shutdown function.
func NewTracerProvider(ctx context.Context, c TraceConfig) (trace.TracerProvider, func(context.Context) error, error) {
	ratio := c.SampleRatio
	if ratio <= 0 {
		ratio = 1
	}
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(c.ServiceName))),
	}
	if c.OTLPEndpoint != "" {
		eopts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(c.OTLPEndpoint)}
		if c.Insecure {
			eopts = append(eopts, otlptracehttp.WithInsecure())
		}
		exp, err := otlptracehttp.New(ctx, eopts...)
		if err != nil {
			return nil, nil, fmt.Errorf("otlp exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	return tp, tp.Shutdown, nil
}

var propagator = propagation.TraceContext{}

// Inject returns the W3C trace context of ctx as a map for job arguments
// (nil when ctx has no span).
func Inject(ctx context.Context) map[string]string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return nil
	}
	m := propagation.MapCarrier{}
	propagator.Inject(ctx, m)
	return m
}

// Extract returns ctx with the remote span context carried in m.
func Extract(ctx context.Context, m map[string]string) context.Context {
	if len(m) == 0 {
		return ctx
	}
	return propagator.Extract(ctx, propagation.MapCarrier(m))
}

// HTTPPropagator is the propagator for HTTP headers (traceparent).
func HTTPPropagator() propagation.TextMapPropagator { return propagator }
