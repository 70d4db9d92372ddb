// Package redis implements sentineldf.Cache and sentineldf.Limiter on
// Redis, shared by every api and worker process of a deployment; the inmem
// package implements the same contracts for one process.
//
// Key layout: a cache entry lives under Options.Prefix + the caller's key
// ("sdf:org:{id}:…"); a rate limiter bucket under "rate:" + Prefix + the
// caller's key ("rate:sdf:rl:key:{id}"), the "rate:" being the layout of
// github.com/go-redis/redis_rate. Callers namespace their keys per org.
//
// Failure semantics: every method fails fast when Redis is unreachable or
// slow (dial, read and write timeouts of 250 ms by default, one retry) and
// returns a *sentineldf.Error with code EUNAVAILABLE wrapping the cause; a
// caller whose own context ended gets an error wrapping ctx.Err() instead.
// The client reconnects by itself once Redis is back: no call is needed.
package redis

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/go-redis/redis_rate/v10"
	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/sentineldf/sentineldf"
)

// Defaults of Options.
const (
	// DefaultPrefix namespaces every key of a deployment.
	DefaultPrefix = "sdf:"
	// DefaultTimeout is the default dial, read and write timeout: short, so
	// that a dead Redis fails a request's cache lookup fast instead of
	// hanging the request.
	DefaultTimeout = 250 * time.Millisecond
	// DefaultMaxRetries is how often a command that failed on the network
	// is retried by default (a pooled connection may have died while idle).
	DefaultMaxRetries = 1
	// DefaultMaxValueBytes bounds a cache value by default.
	DefaultMaxValueBytes = 16 << 20
)

// Options configure a Client. Zero fields take the documented defaults;
// timeouts set as query parameters of URL (dial_timeout, read_timeout,
// write_timeout) apply when the field here is zero.
type Options struct {
	// URL is the server: redis://[user:password@]host:port/db or
	// rediss:// for TLS. It may hold a password, so it is never logged
	// nor included in errors.
	URL string
	// Prefix namespaces every key (default DefaultPrefix).
	Prefix string
	// DialTimeout, ReadTimeout and WriteTimeout bound each connection
	// attempt, reply and request (default DefaultTimeout). A caller's
	// context deadline shortens them further.
	DialTimeout, ReadTimeout, WriteTimeout time.Duration
	// PoolSize is the number of connections kept (default 10 per CPU).
	PoolSize int
	// MaxRetries is how often a command failed by the network is retried
	// (0: DefaultMaxRetries; negative: never). A call fails after at most
	// MaxRetries+1 times the timeouts.
	MaxRetries int
	// MaxValueBytes bounds a cache value (default DefaultMaxValueBytes);
	// larger values are refused with ETOOLARGE.
	MaxValueBytes int
	// SkipPing makes Open return without reaching the server, so that a
	// process can start while Redis is down; the first call connects.
	SkipPing bool
}

// Client is a connection pool to one Redis server. It is safe for
// concurrent use; Close it when done.
type Client struct {
	rdb      *goredis.Client
	prefix   string
	maxValue int
	cache    *Cache
	limiter  *Limiter
}

// Open returns a Client for opts.URL and, unless opts.SkipPing, checks that
// the server answers. A malformed URL or option is an EINVALID error; an
// unreachable server an EUNAVAILABLE one.
func Open(ctx context.Context, opts Options) (*Client, error) {
	ro, err := redisOptions(opts)
	if err != nil {
		return nil, err
	}
	c := &Client{
		rdb:      goredis.NewClient(ro),
		prefix:   opts.Prefix,
		maxValue: opts.MaxValueBytes,
	}
	if c.prefix == "" {
		c.prefix = DefaultPrefix
	}
	if c.maxValue == 0 {
		c.maxValue = DefaultMaxValueBytes
	}
	c.cache = &Cache{c: c}
	c.limiter = &Limiter{c: c, rl: redis_rate.NewLimiter(c.rdb)}
	if !opts.SkipPing {
		if err := c.Ping(ctx); err != nil {
			_ = c.rdb.Close()
			return nil, err
		}
	}
	return c, nil
}

// redisOptions translates opts into go-redis options.
func redisOptions(opts Options) (*goredis.Options, error) {
	if opts.URL == "" {
		return nil, sentineldf.FieldError("redis url", "is required")
	}
	ro, err := goredis.ParseURL(opts.URL)
	if err != nil {
		// url.Parse errors quote the whole URL, password included: keep
		// only the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, &sentineldf.Error{Code: sentineldf.EINVALID, Field: "redis url", Message: "is not a valid redis:// or rediss:// URL", Err: err}
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"dial timeout", int64(opts.DialTimeout)},
		{"read timeout", int64(opts.ReadTimeout)},
		{"write timeout", int64(opts.WriteTimeout)},
		{"pool size", int64(opts.PoolSize)},
		{"max value bytes", int64(opts.MaxValueBytes)},
	} {
		if f.v < 0 {
			return nil, sentineldf.FieldError(f.name, "must not be negative (got %d)", f.v)
		}
	}
	timeout := func(opt, fromURL time.Duration) time.Duration {
		switch {
		case opt > 0:
			return opt
		case fromURL > 0:
			return fromURL
		default:
			return DefaultTimeout
		}
	}
	ro.DialTimeout = timeout(opts.DialTimeout, ro.DialTimeout)
	ro.ReadTimeout = timeout(opts.ReadTimeout, ro.ReadTimeout)
	ro.WriteTimeout = timeout(opts.WriteTimeout, ro.WriteTimeout)
	// One dial attempt per command attempt: go-redis would otherwise retry
	// a refused dial five times, 100 ms apart.
	ro.DialerRetries = 1
	// Pool exhaustion waits no longer than a slow reply would.
	ro.PoolTimeout = ro.ReadTimeout + ro.WriteTimeout
	ro.ContextTimeoutEnabled = true
	switch {
	case opts.MaxRetries > 0:
		ro.MaxRetries = opts.MaxRetries
	case opts.MaxRetries < 0:
		ro.MaxRetries = -1
	default:
		ro.MaxRetries = DefaultMaxRetries
	}
	ro.MinRetryBackoff = 8 * time.Millisecond
	ro.MaxRetryBackoff = 64 * time.Millisecond
	if opts.PoolSize > 0 {
		ro.PoolSize = opts.PoolSize
	}
	// Maintenance notifications are for Redis Enterprise / Cloud; "auto"
	// would probe every new connection of a plain server.
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return ro, nil
}

// Cache returns the client's sentineldf.Cache.
func (c *Client) Cache() sentineldf.Cache { return c.cache }

// Limiter returns the client's sentineldf.Limiter.
func (c *Client) Limiter() sentineldf.Limiter { return c.limiter }

// Ping checks that the server answers; an EUNAVAILABLE error otherwise.
func (c *Client) Ping(ctx context.Context) error {
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		return wrap(ctx, "PING", "cache unavailable", err)
	}
	return nil
}

// Close closes the client's connections. Calls after Close fail with
// EUNAVAILABLE.
func (c *Client) Close() error {
	if err := c.rdb.Close(); err != nil {
		return fmt.Errorf("close redis client: %w", err)
	}
	return nil
}

// wrap turns a go-redis error into the package's: the caller's context
// error when its context ended (the request is gone; Redis may be fine),
// an EUNAVAILABLE *sentineldf.Error with message msg otherwise.
func wrap(ctx context.Context, op, msg string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(err, cerr) {
			return fmt.Errorf("redis %s: %w", op, err)
		}
		return fmt.Errorf("redis %s: %w: %w", op, cerr, err)
	}
	return &sentineldf.Error{Code: sentineldf.EUNAVAILABLE, Message: msg, Err: fmt.Errorf("redis %s: %w", op, err)}
}
