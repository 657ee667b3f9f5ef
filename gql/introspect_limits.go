package gql

import (
	"fmt"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

const (
	// maxIntrospectionLists is graphql-js's MaxIntrospectionDepthRule
	// limit: a document nesting fields, interfaces, possibleTypes or
	// inputFields this many times below __schema or __type is refused.
	// getIntrospectionQuery nests them once; each level multiplies the
	// answer by the size of the schema.
	maxIntrospectionLists = 3
	// maxIntrospectionWalk bounds the selections the depth rule visits
	// (fragments are expanded where they are used), for documents that
	// run with unlimited fragment spreads.
	maxIntrospectionWalk = 100000
	// maxIntrospectionBytes bounds the introspection answers of one
	// result together (every __schema and __type root field). The full
	// getIntrospectionQuery answer of a schema with a thousand types is
	// about 2 MiB; past this the field fails rather than let one query
	// build an unbounded answer.
	maxIntrospectionBytes = 8 << 20
)

// errIntrospectionTooLarge is the field error of an answer past
// maxIntrospectionBytes.
var errIntrospectionTooLarge = fmt.Errorf("introspection answer is larger than %d bytes: select fewer nested fields", maxIntrospectionBytes)

// checkIntrospectionDepth applies graphql-js's MaxIntrospectionDepthRule to
// the __schema and __type fields of op.
func checkIntrospectionDepth(doc *ast.QueryDocument, op *ast.OperationDefinition) gqlerror.List {
	w := depthWalker{doc: doc, visited: map[string]bool{}}
	var errs gqlerror.List
	var roots func(ss ast.SelectionSet)
	roots = func(ss ast.SelectionSet) {
		for _, sel := range ss {
			if w.steps++; w.steps > maxIntrospectionWalk {
				if len(errs) == 0 {
					errs = append(errs, gqlerror.ErrorPosf(op.Position, "Maximum introspection depth exceeded: the document expands to more than %d selections", maxIntrospectionWalk))
				}
				return
			}
			switch sel := sel.(type) {
			case *ast.Field:
				if isIntrospectionRoot(sel.Name) && w.tooDeep(sel.SelectionSet, 0) {
					errs = append(errs, gqlerror.ErrorPosf(sel.Position, "Maximum introspection depth exceeded"))
				}
			case *ast.InlineFragment:
				roots(sel.SelectionSet)
			case *ast.FragmentSpread:
				if f := doc.Fragments.ForName(sel.Name); f != nil && !w.visited[sel.Name] {
					w.visited[sel.Name] = true
					roots(f.SelectionSet)
					w.visited[sel.Name] = false
				}
			}
		}
	}
	roots(op.SelectionSet)
	return errs
}

// depthWalker walks a selection for checkIntrospectionDepth.
type depthWalker struct {
	doc     *ast.QueryDocument
	visited map[string]bool // fragments on the current path
	steps   int
}

// tooDeep reports whether ss nests the introspection list fields
// maxIntrospectionLists times counting depth already, or is too large
// to walk.
func (w *depthWalker) tooDeep(ss ast.SelectionSet, depth int) bool {
	for _, sel := range ss {
		if w.steps++; w.steps > maxIntrospectionWalk {
			return true
		}
		switch sel := sel.(type) {
		case *ast.Field:
			d := depth
			switch sel.Name {
			case "fields", "interfaces", "possibleTypes", "inputFields":
				if d++; d >= maxIntrospectionLists {
					return true
				}
			}
			if w.tooDeep(sel.SelectionSet, d) {
				return true
			}
		case *ast.InlineFragment:
			if w.tooDeep(sel.SelectionSet, depth) {
				return true
			}
		case *ast.FragmentSpread:
			f := w.doc.Fragments.ForName(sel.Name)
			if f == nil || w.visited[sel.Name] {
				continue
			}
			w.visited[sel.Name] = true
			deep := w.tooDeep(f.SelectionSet, depth)
			w.visited[sel.Name] = false
			if deep {
				return true
			}
		}
	}
	return false
}
