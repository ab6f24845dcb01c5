package components

import (
	"context"
	"strings"
	"testing"
)

func TestBarChart_ScaleLabelsAndTableFallback(t *testing.T) {
	p := ChartProps{ID: "c", Title: "Users", Labels: []string{"Nov 1", "Nov 2", "Nov 3"},
		Series: []Series{{Name: "Users", Fill: "fill-indigo-500", Values: []float64{1, 3, 2}}}}
	if got := p.yLabels(); got[0] != "3" || got[1] != "" || got[2] != "0" {
		t.Errorf("yLabels() = %q, want [3 \"\" 0] (no fractional middle for counts)", got)
	}
	p.Unit = " ms"
	if got := p.yLabels(); got[1] != "1.5 ms" {
		t.Errorf("yLabels() with a unit = %q, want a 1.5 ms middle", got)
	}
	if got := p.xLabels(); strings.Join(got, ",") != "Nov 1,Nov 2,Nov 3" {
		t.Errorf("xLabels() = %v", got)
	}
	var b strings.Builder
	if err := BarChart(p).Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	// Every value is in the table fallback, and bars carry a title for hover.
	for _, want := range []string{"<table", "<td class=\"py-1 pr-3 tabular-nums\">3 ms</td>", "<title>Nov 2 · Users: 3 ms</title>", `role="img"`} {
		if !strings.Contains(html, want) {
			t.Errorf("rendered chart lacks %q", want)
		}
	}
	empty := ChartProps{ID: "e", Title: "Nothing", Labels: []string{"a"}, Series: []Series{{Name: "x", Values: []float64{0}}}}
	b.Reset()
	_ = BarChart(empty).Render(context.Background(), &b)
	if !strings.Contains(b.String(), "No data in this period yet.") || strings.Contains(b.String(), "<svg") {
		t.Error("an all-zero chart should say there is no data instead of drawing nothing")
	}
}
