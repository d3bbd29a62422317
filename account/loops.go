package account

import (
	"fmt"
	"strings"
)

// graph links the entry points of internal routing: node i < nsdg is
// sdgs[i], node nsdg+k is numbers[k]. An edge is a route of type sdg, or of
// type number to a numbers[] entry, anywhere in the node's route tree. Nodes
// are visited in order, so the edges are kept in one slice, node by node.
type graph struct {
	nsdg  int
	start []int // edges of node v: edges[start[v]:start[v+1]]
	edges []edge
	cur   int
}

type edge struct {
	to int
	r  *Route // the route that makes the edge, to name it in a message
}

func (g *graph) init(nsdg, nnum int) {
	g.nsdg = nsdg
	g.start = make([]int, nsdg+nnum+1)
	g.cur = -1
}

func (g *graph) sdgNode(i int) int    { return i }
func (g *graph) numberNode(i int) int { return g.nsdg + i }

// begin makes v the node whose route is being checked; nodes come in order.
func (g *graph) begin(v int) {
	for g.cur < v {
		g.cur++
		g.start[g.cur] = len(g.edges)
	}
}

// addEdge adds an edge from the current node to node to, made by route r.
func (g *graph) addEdge(to int, r *Route) {
	g.edges = append(g.edges, edge{to: to, r: r})
}

func (g *graph) out(v int) []edge {
	g.begin(len(g.start) - 1)
	return g.edges[g.start[v]:g.start[v+1]]
}

// edgePath is where the reference making e is written in node v's route.
func (c *checker) edgePath(v int, e edge) string {
	var root *Route
	var elems []pathElem
	if v < c.graph.nsdg {
		root, elems = c.s.SDGs[v].Route, []pathElem{elem("sdgs", v), elem(".route", -1)}
	} else {
		k := v - c.graph.nsdg
		root, elems = c.s.Numbers[k].Route, []pathElem{elem("numbers", k), elem(".route", -1)}
	}
	p := routePath(root, elems, e.r)
	if p == "" {
		p = render(elems)
	}
	if e.r.Type == RouteNumber {
		return p + ".number"
	}
	return p + ".id"
}

// nodeName spells a node in a loop or chain message: the SDG's id or the
// number.
func (c *checker) nodeName(v int) string {
	if v < c.graph.nsdg {
		if id := c.s.SDGs[v].ID; id != "" {
			return id
		}
		return index("sdgs", v)
	}
	if n := c.s.Numbers[v-c.graph.nsdg].Number; n != "" {
		return n
	}
	return index("numbers", v-c.graph.nsdg)
}

// checkLoops finds every cycle by depth-first search, reporting each at the
// edge that closes it (a back edge), then finds SDG chains deeper than
// MaxSDGDepth. Depths are measured with the closing edges left out.
func (c *checker) checkLoops() {
	g := &c.graph
	n := len(g.start) - 1
	const (
		white = iota // not visited
		grey         // on the stack
		black        // done
	)
	state := make([]uint8, n)
	pos := make([]int, n) // index on stack while grey
	depth := make([]int, n)
	next := make([]int, n) // successor on the deepest chain, or -1
	var stack []int
	reported := make(map[[2]int]bool)

	var visit func(v int)
	visit = func(v int) {
		state[v] = grey
		pos[v] = len(stack)
		stack = append(stack, v)
		best, bestNext := 0, -1
		for _, e := range g.out(v) {
			switch state[e.to] {
			case white:
				visit(e.to)
			case grey:
				// Two references from one node to the same node (an IVR's
				// option and its no_input, say) close the same loop.
				if !reported[[2]int{v, e.to}] {
					reported[[2]int{v, e.to}] = true
					c.reportLoop(stack[pos[e.to]:], v, e)
				}
				continue
			}
			if depth[e.to] > best {
				best, bestNext = depth[e.to], e.to
			}
		}
		depth[v] = best
		if v < g.nsdg {
			depth[v]++
		}
		next[v] = bestNext
		stack = stack[:len(stack)-1]
		state[v] = black
	}
	for v := range n {
		if state[v] == white {
			visit(v)
		}
	}

	// Along a deepest chain the depth falls by one at each SDG, so every
	// chain that is too deep has an SDG exactly one level too deep: report
	// there, once, rather than at every SDG above it.
	for i := range g.nsdg {
		if depth[i] != MaxSDGDepth+1 {
			continue
		}
		var b strings.Builder
		for v := i; v >= 0; v = next[v] {
			if v != i {
				b.WriteString(" -> ")
			}
			b.WriteString(c.nodeName(v))
		}
		c.addf(index("sdgs", i)+".route", "sdgs nest %d deep (at most %d): %s; route one of them to a user or group instead",
			MaxSDGDepth+1, MaxSDGDepth, b.String())
	}
}

func (c *checker) reportLoop(cycle []int, from int, closing edge) {
	var b strings.Builder
	for _, v := range cycle {
		b.WriteString(c.nodeName(v))
		b.WriteString(" -> ")
	}
	b.WriteString(c.nodeName(closing.to))
	c.add(c.edgePath(from, closing), fmt.Sprintf("route loops: %s; calls would go round forever, route one of them elsewhere", b.String()))
}
