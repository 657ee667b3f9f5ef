package resolve

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/vektah/gqlparser/v2/gqlerror"
)

// The resolver socket protocol (README "Resolvers in any language"): over
// a stream socket, each way, frames of a 4-byte big-endian length and that
// many bytes of a JSON object.
//
// fraised sends calls; one frame carries every call started in one
// dispatch batch (split only past MaxFrame):
//
//	{"calls":[{"id":1,"field":"Subscription.userUpdated","event":{...},"args":{...},"identity":null}]}
//
// identity is {"init_payload":...,"claims":...} for a resolver declared to
// read it, else null. The resolver answers each call once, by id, in any
// order and in any grouping of frames:
//
//	{"results":[{"id":1,"data":{...}},{"id":2,"error":{"message":"...","extensions":{"code":"..."}}}]}
//
// data is the field's value, projected through each subscriber's
// selection set; a result without data or error is null.

// MaxFrame caps a frame either way: a batch of calls past it is split, a
// single call past it fails, and a resolver sending a longer frame is
// disconnected (its calls in flight become RESOLVER_UNAVAILABLE). 32 MiB
// holds 32 calls with events at the largest --max-payload default (1 MiB),
// and bounds what a broken resolver can make fraised allocate.
const MaxFrame = 32 << 20

// frameHeader is the length prefix's size.
const frameHeader = 4

// errFrameTooLarge is returned by readFrame for a frame past MaxFrame.
var errFrameTooLarge = fmt.Errorf("resolve: frame longer than %d bytes (MaxFrame)", MaxFrame)

// readFrame reads one frame into buf (grown as needed) and returns its body.
func readFrame(r io.Reader, buf []byte) ([]byte, error) {
	var h [frameHeader]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return buf, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if n > MaxFrame {
		return buf, errFrameTooLarge
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return buf, err
	}
	return buf, nil
}

// beginFrame starts a calls frame in dst (its length is filled by
// endFrame).
func beginFrame(dst []byte) []byte {
	return append(append(dst, 0, 0, 0, 0), `{"calls":[`...)
}

// endFrame closes the frame that starts at dst[start] and writes its length.
func endFrame(dst []byte, start int) []byte {
	dst = append(dst, "]}"...)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-frameHeader))
	return dst
}

// appendCall appends c as one element of a calls array.
func appendCall(dst []byte, c *Call) ([]byte, error) {
	dst = strconv.AppendUint(append(dst, `{"id":`...), c.id, 10)
	dst = append(dst, `,"field":`...)
	dst = strconv.AppendQuote(dst, c.Key)
	dst = appendRawOrNull(append(dst, `,"event":`...), c.Params.Event)
	dst, err := appendMarshal(append(dst, `,"args":`...), c.Params.Args)
	if err != nil {
		return dst, fmt.Errorf("cannot encode the arguments of %s: %w", c.Key, err)
	}
	dst = append(dst, `,"identity":`...)
	if !c.Identity {
		dst = append(dst, "null"...)
	} else {
		dst = appendRawOrNull(append(dst, `{"init_payload":`...), c.Params.InitPayload)
		if dst, err = appendMarshal(append(dst, `,"claims":`...), c.Params.Claims); err != nil {
			return dst, fmt.Errorf("cannot encode the claims for %s: %w", c.Key, err)
		}
		dst = append(dst, '}')
	}
	return append(dst, '}'), nil
}

// appendRawOrNull appends raw, a JSON value, or null when it is empty.
func appendRawOrNull(dst, raw []byte) []byte {
	if len(raw) == 0 {
		return append(dst, "null"...)
	}
	return append(dst, raw...)
}

// appendMarshal appends v encoded as JSON.
func appendMarshal(dst []byte, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	return append(dst, b...), err
}

// result is one answer of a results frame.
type result struct {
	ID    uint64          `json:"id"`
	Data  json.RawMessage `json:"data"`
	Error *wireError      `json:"error"`
}

// wireError is a result's error.
type wireError struct {
	Message    string         `json:"message"`
	Extensions map[string]any `json:"extensions"`
}

// maxErrorMessage bounds the message of a resolver's error passed on to
// subscribers; a longer one is cut (it is sent to every member).
const maxErrorMessage = 4096

// err returns the GraphQL error a subscriber sees.
func (e *wireError) err() error {
	msg := e.Message
	if msg == "" {
		msg = "resolver error"
	}
	if len(msg) > maxErrorMessage {
		msg = msg[:maxErrorMessage]
	}
	return &gqlerror.Error{Message: msg, Extensions: e.Extensions}
}

// parseResults decodes a results frame.
func parseResults(body []byte) ([]result, error) {
	var f struct {
		Results []result `json:"results"`
	}
	if err := json.Unmarshal(body, &f); err != nil {
		return nil, fmt.Errorf("resolve: invalid results frame: %w", err)
	}
	return f.Results, nil
}
