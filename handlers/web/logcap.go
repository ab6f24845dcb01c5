package web

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"unicode/utf8"
)

// MaxLogValue bounds every string the server logs: a path, a parameter, an error whose
// text echoes a request value (a driver error quotes the bad value whole). Requests
// choose those values, so without a bound one request could write 100 KB of log.
const MaxLogValue = 1 << 10

// CapLog returns a logger whose every string attribute, error and message is cut to
// MaxLogValue bytes (CapLogValue). It is how the instance's logger is built, so each
// log line of every surface is bounded whatever a request sent; wrapping twice is a
// no-op.
func CapLog(l *slog.Logger) *slog.Logger {
	if l == nil {
		l = slog.Default()
	}
	if _, ok := l.Handler().(capHandler); ok {
		return l
	}
	return slog.New(capHandler{l.Handler()})
}

// CapLogValue cuts s to at most MaxLogValue bytes, at a character boundary, and says how
// much was left out.
func CapLogValue(s string) string {
	if len(s) <= MaxLogValue {
		return s
	}
	cut := MaxLogValue
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…(" + strconv.Itoa(len(s)-cut) + " more bytes)"
}

type capHandler struct{ h slog.Handler }

func (c capHandler) Enabled(ctx context.Context, l slog.Level) bool { return c.h.Enabled(ctx, l) }

func (c capHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, CapLogValue(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(capAttr(a))
		return true
	})
	return c.h.Handle(ctx, out)
}

func (c capHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	capped := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		capped[i] = capAttr(a)
	}
	return capHandler{c.h.WithAttrs(capped)}
}

func (c capHandler) WithGroup(name string) slog.Handler { return capHandler{c.h.WithGroup(name)} }

// capAttr bounds one attribute. A panic's stack is the server's own text, not the
// request's, and is kept whole.
func capAttr(a slog.Attr) slog.Attr {
	if a.Key == "stack" {
		return a
	}
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		if s := v.String(); len(s) > MaxLogValue {
			return slog.String(a.Key, CapLogValue(s))
		}
	case slog.KindGroup:
		group := v.Group()
		capped := make([]slog.Attr, len(group))
		for i, g := range group {
			capped[i] = capAttr(g)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(capped...)}
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			if s := x.Error(); len(s) > MaxLogValue {
				return slog.String(a.Key, CapLogValue(s))
			}
		case fmt.Stringer:
			if s := x.String(); len(s) > MaxLogValue {
				return slog.String(a.Key, CapLogValue(s))
			}
		case []byte:
			if len(x) > MaxLogValue {
				return slog.String(a.Key, CapLogValue(string(x)))
			}
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
