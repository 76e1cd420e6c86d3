package bench

import (
	"bytes"
	"fmt"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// figure is an image of the report: its path relative to the report, its alt text, and how to
// draw it.
type figure struct {
	path, alt string
	draw      func() ([]byte, error)
}

// figures are the images the run has data for: the snapshots written over time at the largest
// size whose first run recorded them, and the manager's resident set during the first sync of
// the largest size whose memory was measured.
func (r *Report) figures() []figure {
	var out []figure
	var writes, rss *SizeResult
	for i := range r.Sizes {
		s := &r.Sizes[i]
		if len(s.Series[writerOurs]) > 0 && len(s.Series[writerBare]) > 0 && len(s.Series[writerRef]) > 0 {
			writes = s
		}
		if s.Memory != nil && len(s.Memory.RSS) > 1 {
			rss = s
		}
	}
	if writes != nil {
		out = append(out, figure{path: "benchmarks/writes-over-time.svg",
			alt: fmt.Sprintf("Snapshots written over time, %d jobs: dlcsync's first sync, the bare client and the two-write "+
				"reference", writes.Jobs),
			draw: func() ([]byte, error) { return writesPlot(writes) }})
	}
	if rss != nil {
		out = append(out, figure{path: fmt.Sprintf("benchmarks/rss-%s.svg", shortCount(rss.Jobs)),
			alt:  fmt.Sprintf("Resident set of the manager binary during its first sync of %d jobs", rss.Jobs),
			draw: func() ([]byte, error) { return rssPlot(rss) }})
	}
	return out
}

// Figures draws the report's images as SVG, by their path relative to the report.
func (r *Report) Figures() (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, f := range r.figures() {
		data, err := f.draw()
		if err != nil {
			return nil, fmt.Errorf("drawing %s: %w", f.path, err)
		}
		out[f.path] = data
	}
	return out, nil
}

// figuresMarkdown embeds the images, linked relative to the report.
func (r *Report) figuresMarkdown(b *strings.Builder) {
	for _, f := range r.figures() {
		fmt.Fprintf(b, "\n![%s](%s)\n", f.alt, f.path)
	}
}

// series is one line of a plot.
type series struct {
	name   string
	points []Point
	// scale multiplies every value (bytes to MiB).
	scale float64
}

// writesPlot draws the snapshots each writer had written over time in the size's first run.
func writesPlot(s *SizeResult) ([]byte, error) {
	// The lines rise from the bottom left: the legend goes where they never are.
	return linePlot(fmt.Sprintf("%d jobs: snapshots written over time", s.Jobs), "seconds since the phase started",
		"snapshots written", legendBottomRight, []series{
			{name: writerOurs + " (first sync, as its cache saw them)", points: s.Series[writerOurs], scale: 1},
			{name: writerBare, points: s.Series[writerBare], scale: 1},
			{name: writerRef + " (create, then status)", points: s.Series[writerRef], scale: 1},
		})
}

// rssPlot draws the manager binary's resident set during its first sync, with the 10,000-job
// target for the peak when that is the size.
func rssPlot(s *SizeResult) ([]byte, error) {
	lines := []series{{name: "manager RSS", points: s.Memory.RSS, scale: 1.0 / (1 << 20)}}
	if s.Jobs == 10000 && len(s.Memory.RSS) > 0 {
		last := s.Memory.RSS[len(s.Memory.RSS)-1].T
		lines = append(lines, series{name: "target: peak ≤ 128 MiB", points: []Point{{0, 128}, {last, 128}}, scale: 1})
	}
	return linePlot(fmt.Sprintf("Manager binary, first sync of %d jobs: resident set", s.Jobs), "seconds since the JobQuery was created",
		"MiB", legendTopLeft, lines)
}

// Where a plot's legend goes.
const (
	legendTopLeft = iota
	legendBottomRight
)

// linePlot draws lines on one pair of axes, as SVG.
func linePlot(title, x, y string, legend int, lines []series) ([]byte, error) {
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = title, x, y
	p.Add(plotter.NewGrid())
	p.Legend.Top, p.Legend.Left = legend == legendTopLeft, legend == legendTopLeft
	if legend == legendBottomRight {
		p.Legend.YOffs = vg.Points(8)
	}
	for i, l := range lines {
		xys := make(plotter.XYs, len(l.points))
		for j, pt := range l.points {
			xys[j].X, xys[j].Y = pt.T, pt.V*l.scale
		}
		line, err := plotter.NewLine(xys)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", l.name, err)
		}
		line.Color, line.Dashes, line.Width = plotutil.Color(i), plotutil.Dashes(i), vg.Points(1.5)
		p.Add(line)
		p.Legend.Add(l.name, line)
	}
	// From zero, with room above the highest line for a legend at the top.
	p.X.Min, p.Y.Min = 0, 0
	if legend == legendTopLeft {
		p.Y.Max *= 1.3
	}
	w, err := p.WriterTo(7*vg.Inch, 4*vg.Inch, "svg")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// shortCount writes 10000 as 10k.
func shortCount(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}
