package server

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/tidwall/gjson"
)

// maxTopicLen bounds topic names: long enough for any hierarchical name,
// short enough that a hostile publisher cannot bloat the registry.
const maxTopicLen = 1024

var (
	errEmptyTopic = errors.New("topic must not be empty")
	errLongTopic  = fmt.Errorf("topic longer than %d bytes", maxTopicLen)
	errNotObject  = errors.New("payload must be a JSON object")
)

// validatePublish checks a publish's topic and payload before they are
// accepted into the ring.
func validatePublish(topic, payload []byte, maxPayload int) error {
	switch {
	case len(topic) == 0:
		return errEmptyTopic
	case len(topic) > maxTopicLen:
		return errLongTopic
	case len(payload) > maxPayload:
		return fmt.Errorf("payload too large (limit %d bytes)", maxPayload)
	case !isJSONObject(payload):
		return errNotObject
	}
	return nil
}

func isJSONObject(b []byte) bool {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	if i == len(b) || b[i] != '{' {
		return false
	}
	return gjson.Valid(unsafe.String(unsafe.SliceData(b), len(b)))
}
