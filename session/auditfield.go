package session

import (
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

// auditFieldTokens bounds the tokens read to name the root field of a
// refused subscribe for its audit record: the field is one of the first
// tokens of any real document, and the bound keeps the cost of a flood of
// refused subscribes (audit on) small and independent of their size.
const auditFieldTokens = 4096

// maxFragmentHops bounds how many fragment spreads rootField follows to
// reach a field (fragments may be cyclic in an invalid document).
const maxFragmentHops = 8

// rootField returns the first root field of the operation named opName
// (or the only one) in query, or "" when the document does not parse
// within auditFieldTokens or has no field. It is used for audit records
// of subscribes that were refused before or while compiling, so it never
// trusts the document to be valid. Safe for concurrent use.
func rootField(query, opName string) string {
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: query}, auditFieldTokens)
	if err != nil || doc == nil {
		return ""
	}
	op := doc.Operations.ForName(opName)
	if op == nil {
		return ""
	}
	return firstField(doc, op.SelectionSet, maxFragmentHops)
}

func firstField(doc *ast.QueryDocument, set ast.SelectionSet, hops int) string {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			return s.Name
		case *ast.InlineFragment:
			if name := firstField(doc, s.SelectionSet, hops); name != "" {
				return name
			}
		case *ast.FragmentSpread:
			if f := doc.Fragments.ForName(s.Name); f != nil && hops > 0 {
				if name := firstField(doc, f.SelectionSet, hops-1); name != "" {
					return name
				}
			}
		}
	}
	return ""
}
