package components

import (
	"fmt"
	"strconv"
)

// Charts are server-rendered SVG: no script to load or re-initialise after an htmx swap,
// nothing for the CSP to allow, and every chart carries its numbers as a table for
// screen readers and for copying.

// Series is one stacked layer of a bar chart.
type Series struct {
	Name   string
	Fill   string // a Tailwind fill class, e.g. "fill-indigo-500"
	Swatch string // the matching background class for the legend, e.g. "bg-indigo-500"
	Values []float64
}

// ChartProps describes a stacked bar chart over labelled buckets.
type ChartProps struct {
	ID     string
	Title  string
	Labels []string // one per bucket, e.g. "14:00" or "Nov 3"
	Series []Series
	Unit   string // appended to values in the table, e.g. " ms"
}

type bar struct {
	X, Y, W, H float64
	Fill       string
	Title      string
}

const (
	chartW, chartH = 640.0, 180.0
	chartPadTop    = 8.0
)

func (p ChartProps) max() float64 {
	m := 0.0
	for i := range p.Labels {
		if t := p.total(i); t > m {
			m = t
		}
	}
	return m
}

func (p ChartProps) total(i int) float64 {
	t := 0.0
	for _, s := range p.Series {
		if i < len(s.Values) {
			t += s.Values[i]
		}
	}
	return t
}

func (p ChartProps) bars() []bar {
	n := len(p.Labels)
	if n == 0 {
		return nil
	}
	m := p.max()
	if m == 0 {
		m = 1
	}
	slot := chartW / float64(n)
	w := slot * 0.72
	var out []bar
	for i, label := range p.Labels {
		y := chartH
		for _, s := range p.Series {
			if i >= len(s.Values) || s.Values[i] == 0 {
				continue
			}
			h := s.Values[i] / m * (chartH - chartPadTop)
			y -= h
			out = append(out, bar{X: float64(i)*slot + (slot-w)/2, Y: y, W: w, H: h, Fill: s.Fill,
				Title: fmt.Sprintf("%s · %s: %s%s", label, s.Name, formatValue(s.Values[i]), p.Unit)})
		}
	}
	return out
}

// axisLabels picks at most six bucket labels to print under the chart.
func (p ChartProps) axisLabels() []struct {
	X    float64
	Text string
} {
	n := len(p.Labels)
	var out []struct {
		X    float64
		Text string
	}
	if n == 0 {
		return out
	}
	step := (n + 5) / 6
	slot := chartW / float64(n)
	for i := 0; i < n; i += step {
		out = append(out, struct {
			X    float64
			Text string
		}{float64(i)*slot + slot/2, p.Labels[i]})
	}
	return out
}

func (p ChartProps) value(s Series, i int) string {
	if i >= len(s.Values) {
		return "0"
	}
	return formatValue(s.Values[i]) + p.Unit
}

func formatValue(v float64) string {
	if v == float64(int64(v)) {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

func f(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

func viewBox() string { return fmt.Sprintf("0 0 %d %d", int(chartW), int(chartH+20)) }
