package flame

import (
	"fmt"
	"hash/fnv"
	"html"
	"io"
	"sort"
	"strings"
)

// node is a frame in the merged call tree.
type node struct {
	name     string
	value    int64
	children map[string]*node
}

func (n *node) child(name string) *node {
	if n.children == nil {
		n.children = map[string]*node{}
	}
	c := n.children[name]
	if c == nil {
		c = &node{name: name}
		n.children[name] = c
	}
	return c
}

// Tree merges the samples' stacks (root first) weighted by value index vi.
func (p *Profile) tree(vi int) *node {
	root := &node{name: "all"}
	for _, s := range p.Samples {
		if vi >= len(s.Values) || s.Values[vi] <= 0 {
			continue
		}
		v := s.Values[vi]
		root.value += v
		n := root
		for i := len(s.Stack) - 1; i >= 0; i-- {
			n = n.child(s.Stack[i])
			n.value += v
		}
	}
	return root
}

const (
	width   = 1200.0
	rowH    = 16
	padTop  = 40
	padSide = 10
)

// WriteSVG renders the flame graph of sample type index vi (root at the
// bottom, width proportional to value, hover for names and shares).
func (p *Profile) WriteSVG(w io.Writer, vi int, title, unit string) error {
	root := p.tree(vi)
	depth := maxDepth(root, 0)
	h := padTop + (depth+1)*rowH + 30
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%d" viewBox="0 0 %.0f %d" font-family="Verdana, sans-serif" font-size="11">`+"\n",
		width, h, width, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#f8f8f8"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="22" font-size="15" text-anchor="middle">%s</text>`+"\n", width/2, html.EscapeString(title))
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555">total %s %s; hover a frame for its share</text>`+"\n", padSide, h-10, human(root.value), unit)
	if root.value > 0 {
		scale := (width - 2*padSide) / float64(root.value)
		draw(&b, root, root.value, padSide, h-30-rowH, scale, unit)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func maxDepth(n *node, d int) int {
	m := d
	for _, c := range n.children {
		m = max(m, maxDepth(c, d+1))
	}
	return m
}

func draw(b *strings.Builder, n *node, total int64, x float64, y int, scale float64, unit string) {
	wd := float64(n.value) * scale
	if wd < 0.3 {
		return
	}
	pct := 100 * float64(n.value) / float64(total)
	fmt.Fprintf(b, `<g><title>%s (%s %s, %.2f%%)</title><rect x="%.2f" y="%d" width="%.2f" height="%d" fill="%s" rx="2"/>`,
		html.EscapeString(n.name), human(n.value), unit, pct, x, y, wd, rowH-1, color(n.name))
	if chars := int((wd - 6) / 7); chars >= 3 {
		label := n.name
		if len(label) > chars {
			label = label[:chars-2] + ".."
		}
		fmt.Fprintf(b, `<text x="%.2f" y="%d">%s</text>`, x+3, y+rowH-4, html.EscapeString(label))
	}
	b.WriteString("</g>\n")
	kids := make([]*node, 0, len(n.children))
	for _, c := range n.children {
		kids = append(kids, c)
	}
	sort.Slice(kids, func(i, j int) bool { return kids[i].name < kids[j].name })
	cx := x
	for _, c := range kids {
		draw(b, c, total, cx, y-rowH, scale, unit)
		cx += float64(c.value) * scale
	}
}

// color is a warm flame-graph colour stable per function name; the
// runtime and syscalls are tinted apart so kernel-bound time stands out.
func color(name string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	v := h.Sum32()
	switch {
	case strings.HasPrefix(name, "syscall.") || strings.HasPrefix(name, "internal/runtime/syscall") || strings.Contains(name, "unix.Syscall") || strings.HasPrefix(name, "golang.org/x/sys/unix."):
		return fmt.Sprintf("rgb(%d,%d,%d)", 90+v%40, 150+v%50, 220)
	case strings.HasPrefix(name, "runtime."):
		return fmt.Sprintf("rgb(%d,%d,%d)", 200+v%40, 190+v%40, 80+v%40)
	}
	return fmt.Sprintf("rgb(%d,%d,%d)", 205+v%50, 80+v%120, 40+v%50)
}

func human(v int64) string {
	f := float64(v)
	switch {
	case f >= 1e9:
		return fmt.Sprintf("%.2fG", f/1e9)
	case f >= 1e6:
		return fmt.Sprintf("%.2fM", f/1e6)
	case f >= 1e3:
		return fmt.Sprintf("%.1fk", f/1e3)
	}
	return fmt.Sprintf("%d", v)
}
