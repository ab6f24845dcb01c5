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

// xLabels are the first, middle and last bucket labels, printed as HTML under the
// chart: text inside the stretched SVG would be distorted and too small on a phone.
func (p ChartProps) xLabels() []string {
	n := len(p.Labels)
	switch {
	case n == 0:
		return nil
	case n < 3:
		return []string{p.Labels[0], p.Labels[n-1]}
	}
	return []string{p.Labels[0], p.Labels[n/2], p.Labels[n-1]}
}

// yLabels are the scale's top, middle and bottom values. Counts (no unit) get no
// middle label when it would be a fraction: "1.5 users" reads as a bug.
func (p ChartProps) yLabels() []string {
	m := p.max()
	mid := formatValue(m/2) + p.Unit
	if p.Unit == "" && m/2 != float64(int64(m/2)) {
		mid = ""
	}
	return []string{formatValue(m) + p.Unit, mid, "0"}
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

func viewBox() string { return fmt.Sprintf("0 0 %d %d", int(chartW), int(chartH)) }
