package server

import (
	"github.com/fraised/fraised/dispatch"
	"github.com/fraised/fraised/gql"
)

// historySource is the schema as the dispatcher's history source
// (@history), or nil when no field keeps history: the dispatcher then
// keeps none and pays nothing for it.
func historySource(s *gql.Schema) dispatch.HistorySource {
	if s == nil || !s.HasHistory() {
		return nil
	}
	return s
}
