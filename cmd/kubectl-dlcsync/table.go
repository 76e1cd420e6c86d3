package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/mattn/go-runewidth"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/printers"
)

// The layout of kubectl's tables (cli-runtime's GetNewTabWriter): a column is as wide as its
// widest cell plus 3 spaces, and at least 6.
const (
	tableMinWidth = 6
	tablePadding  = 3
)

// tablePrinter prints metav1.Tables as cli-runtime's table printer does (upper-case headers,
// Priority 1 columns only with -o wide, a NAMESPACE column with -A, the header once across the
// tables of a --watch, column widths that only grow), but aligns the columns by display width.
// Cli-runtime writes through a tabwriter, which counts a CJK character as one cell where a
// terminal draws two, so a display name such as 语音识别实验-25 pushes the rest of its row out of
// line; its printer always wraps the output in that tabwriter, so it cannot be reused here.
type tablePrinter struct {
	options printers.PrintOptions
	// widths of the columns printed so far, so that the rows of a --watch stay aligned with them.
	widths        []int
	printedHeader bool
}

var _ printers.ResourcePrinter = &tablePrinter{}

func newTablePrinter(options printers.PrintOptions) *tablePrinter {
	return &tablePrinter{options: options}
}

// PrintObj prints a *metav1.Table: its header (unless printed already or --no-headers) and rows.
func (p *tablePrinter) PrintObj(obj runtime.Object, w io.Writer) error {
	table, ok := obj.(*metav1.Table)
	if !ok {
		return fmt.Errorf("the table printer prints tables, not %T", obj)
	}
	if len(table.Rows) == 0 {
		return nil
	}
	var visible []int
	for i, c := range table.ColumnDefinitions {
		if c.Priority == 0 || p.options.Wide {
			visible = append(visible, i)
		}
	}
	var lines [][]string
	if !p.options.NoHeaders && !p.printedHeader {
		header := make([]string, 0, len(visible)+1)
		if p.options.WithNamespace {
			header = append(header, "NAMESPACE")
		}
		for _, i := range visible {
			header = append(header, strings.ToUpper(table.ColumnDefinitions[i].Name))
		}
		lines = append(lines, header)
		p.printedHeader = true
	}
	for _, row := range table.Rows {
		line := make([]string, 0, len(visible)+1)
		if p.options.WithNamespace {
			ns := ""
			if m, err := meta.Accessor(row.Object.Object); err == nil {
				ns = m.GetNamespace()
			}
			line = append(line, cellText(ns))
		}
		for _, i := range visible {
			var cell any
			if i < len(row.Cells) {
				cell = row.Cells[i]
			}
			line = append(line, cellText(cell))
		}
		lines = append(lines, line)
	}
	p.grow(lines)
	var b strings.Builder
	for _, line := range lines {
		for i, cell := range line {
			b.WriteString(cell)
			// The last cell is not padded, as tabwriter leaves no trailing blanks.
			if i < len(line)-1 {
				b.WriteString(strings.Repeat(" ", p.widths[i]-runewidth.StringWidth(cell)))
			}
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// grow widens the remembered columns to fit these lines (the last cell of a line sets no width).
func (p *tablePrinter) grow(lines [][]string) {
	for _, line := range lines {
		for i := range len(line) - 1 {
			if i == len(p.widths) {
				p.widths = append(p.widths, tableMinWidth)
			}
			p.widths[i] = max(p.widths[i], runewidth.StringWidth(line[i])+tablePadding)
		}
	}
}

// cellText is a cell as kubectl shows it: a string cut at its first line break (with "..."),
// escaped so that a job's name cannot move the terminal's cursor; nil as nothing. A tab, which
// has no display width of its own, becomes a space.
func cellText(cell any) string {
	switch v := cell.(type) {
	case nil:
		return ""
	case string:
		if i := strings.IndexAny(v, "\f\n\r"); i >= 0 {
			v = v[:i] + "..."
		}
		return printers.EscapeTerminal(strings.ReplaceAll(v, "\t", " "))
	default:
		return printers.EscapeTerminal(fmt.Sprint(v))
	}
}
