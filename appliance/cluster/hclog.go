package cluster

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// hclogBridge adapts hashicorp/raft's hclog.Logger onto the node's slog
// logger, so Raft's messages carry the node's attributes and format.
type hclogBridge struct {
	log   *slog.Logger
	name  string
	args  []any
	level *atomic.Int32 // shared by derived loggers, as hclog's are
}

func newHCLogBridge(log *slog.Logger, level hclog.Level) hclog.Logger {
	l := &atomic.Int32{}
	l.Store(int32(level))
	return &hclogBridge{log: log, level: l}
}

func slogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace, hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

func (b *hclogBridge) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off || level < hclog.Level(b.level.Load()) {
		return
	}
	attrs := make([]any, 0, len(b.args)+len(args)+2)
	if b.name != "" {
		attrs = append(attrs, "raft_logger", b.name)
	}
	attrs = append(attrs, b.args...)
	attrs = append(attrs, snakeArgs(args)...)
	b.log.Log(context.Background(), slogLevel(level), msg, attrs...)
}

// snakeArgs rewrites hclog's keys ("last-index") to our snake_case.
func snakeArgs(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		if k, ok := a.(string); ok && i%2 == 0 {
			a = strings.ReplaceAll(k, "-", "_")
		}
		if f, ok := a.(hclog.Format); ok && len(f) > 0 {
			if format, ok := f[0].(string); ok {
				a = fmt.Sprintf(format, f[1:]...)
			}
		}
		out[i] = a
	}
	return out
}

func (b *hclogBridge) Trace(msg string, args ...any) { b.Log(hclog.Trace, msg, args...) }
func (b *hclogBridge) Debug(msg string, args ...any) { b.Log(hclog.Debug, msg, args...) }
func (b *hclogBridge) Info(msg string, args ...any)  { b.Log(hclog.Info, msg, args...) }
func (b *hclogBridge) Warn(msg string, args ...any)  { b.Log(hclog.Warn, msg, args...) }
func (b *hclogBridge) Error(msg string, args ...any) { b.Log(hclog.Error, msg, args...) }

func (b *hclogBridge) IsTrace() bool { return hclog.Level(b.level.Load()) <= hclog.Trace }
func (b *hclogBridge) IsDebug() bool { return hclog.Level(b.level.Load()) <= hclog.Debug }
func (b *hclogBridge) IsInfo() bool  { return hclog.Level(b.level.Load()) <= hclog.Info }
func (b *hclogBridge) IsWarn() bool  { return hclog.Level(b.level.Load()) <= hclog.Warn }
func (b *hclogBridge) IsError() bool { return hclog.Level(b.level.Load()) <= hclog.Error }

func (b *hclogBridge) ImpliedArgs() []any { return b.args }

func (b *hclogBridge) With(args ...any) hclog.Logger {
	c := *b
	c.args = append(append([]any{}, b.args...), snakeArgs(args)...)
	return &c
}

func (b *hclogBridge) Name() string { return b.name }

func (b *hclogBridge) Named(name string) hclog.Logger {
	c := *b
	if c.name != "" {
		name = c.name + "." + name
	}
	c.name = name
	return &c
}

func (b *hclogBridge) ResetNamed(name string) hclog.Logger {
	c := *b
	c.name = name
	return &c
}

func (b *hclogBridge) SetLevel(level hclog.Level) { b.level.Store(int32(level)) }
func (b *hclogBridge) GetLevel() hclog.Level      { return hclog.Level(b.level.Load()) }

func (b *hclogBridge) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(b.StandardWriter(opts), "", 0)
}

func (b *hclogBridge) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		b.Info(strings.TrimSpace(string(p)))
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
