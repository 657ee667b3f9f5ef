package gql

import (
	"container/list"
	"sync"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

const (
	// docCacheEntries bounds the number of distinct documents kept parsed: a
	// deployment has a few dozen client documents, so 1024 covers many
	// client versions at once.
	docCacheEntries = 1024
	// docCacheBytes bounds the total text of cached documents (ASTs take
	// roughly ten times the text), so hostile clients sending distinct
	// documents cannot grow memory without bound.
	docCacheBytes = 4 << 20
)

// docEntry is a parsed and validated document, or the errors it produced.
// Entries are shared by concurrent compilations and never modified but for
// ops, which mu guards.
type docEntry struct {
	text string
	hash uint64 // DocHash
	doc  *ast.QueryDocument
	errs gqlerror.List

	mu  sync.Mutex
	ops map[string]*opInfo // by operation name, for names that select one
}

// docCache is a least-recently-used cache of documents keyed by their text.
// It is safe for concurrent use.
type docCache struct {
	mu    sync.Mutex
	byKey map[string]*list.Element
	lru   list.List // front = most recently used; values are *docEntry
	bytes int
}

// newDocCache returns an empty cache.
func newDocCache() *docCache {
	return &docCache{byKey: map[string]*list.Element{}}
}

// get returns the entry for text, if cached.
func (c *docCache) get(text string) (*docEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[text]
	if !ok {
		return nil, false
	}
	c.lru.MoveToFront(el)
	return el.Value.(*docEntry), true
}

// put adds e, evicting the least recently used entries past the bounds.
func (c *docCache) put(e *docEntry) {
	if len(e.text) > docCacheBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byKey[e.text]; ok {
		return
	}
	c.byKey[e.text] = c.lru.PushFront(e)
	c.bytes += len(e.text)
	for c.lru.Len() > docCacheEntries || c.bytes > docCacheBytes {
		old := c.lru.Remove(c.lru.Back()).(*docEntry)
		delete(c.byKey, old.text)
		c.bytes -= len(old.text)
	}
}

// len returns the number of cached documents.
func (c *docCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
