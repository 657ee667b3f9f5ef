package session

import (
	"strconv"

	"github.com/cespare/xxhash/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/fraised/fraised/audit"
	"github.com/fraised/fraised/gql"
)

// AcceptedRecord is the audit record (its event, peer and subject left to
// the caller) of an operation that compiled from the document query: its
// name, root field (a query's first, read from the document), document
// hash and topic. Over WebSocket and HTTP alike.
func AcceptedRecord(op *gql.Operation, query string) audit.Record {
	field := op.Field
	if field == "" {
		_, field = rootField(query, op.OperationName)
	}
	return audit.Record{Operation: op.OperationName, Field: field,
		DocHash: strconv.FormatUint(op.DocHash, 16), Topic: op.Topic}
}

// RefusedRecord is the audit record (its event, peer and subject left to
// the caller) of an operation refused for reason before or while it
// compiled: its name (as sent, else the document's), the root field the
// document names (rootField) and a hash of the document. Over WebSocket
// and HTTP alike.
func RefusedRecord(query, opName, reason string) audit.Record {
	name, field := rootField(query, opName)
	if opName != "" {
		name = opName
	}
	return audit.Record{Operation: name, Reason: reason,
		Field: field, DocHash: strconv.FormatUint(xxhash.Sum64String(query), 16)}
}

// auditFieldTokens bounds the tokens read to name the root field of a
// refused subscribe for its audit record: the field is one of the first
// tokens of any real document, and the bound keeps the cost of a flood of
// refused subscribes (audit on) small and independent of their size.
const auditFieldTokens = 4096

// maxFragmentHops bounds how many fragment spreads rootField follows to
// reach a field (fragments may be cyclic in an invalid document).
const maxFragmentHops = 8

// rootField returns the name and first root field of the operation named
// opName (or the only one) in query, or "" for what the document does not
// have or when it does not parse within auditFieldTokens. It is used for
// audit records of operations refused before or while compiling, so it
// never trusts the document to be valid. Safe for concurrent use.
func rootField(query, opName string) (name, field string) {
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: query}, auditFieldTokens)
	if err != nil || doc == nil {
		return "", ""
	}
	op := doc.Operations.ForName(opName)
	if op == nil {
		return "", ""
	}
	return op.Name, firstField(doc, op.SelectionSet, maxFragmentHops)
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
