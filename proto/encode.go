package proto

// Server messages, unframed: the JSON text of each graphql-transport-ws
// message the server sends. A transport frames them (a WebSocket text
// frame today). The static ones are shared read-only.
var (
	// MessageAck is the connection_ack message.
	MessageAck = []byte(`{"type":"connection_ack"}`)
	// MessagePong is the pong message answering a ping without payload.
	MessagePong = []byte(`{"type":"pong"}`)
)

const (
	idPrefix       = `{"id":`
	nextMiddle     = `,"type":"next","payload":`
	errorMiddle    = `,"type":"error","payload":`
	completeSuffix = `,"type":"complete"}`
)

// NextLen returns the length of the message AppendNext appends.
func NextLen(id, payload []byte) int {
	return len(idPrefix) + len(id) + len(nextMiddle) + len(payload) + 1
}

// ErrorLen returns the length of the message AppendError appends.
func ErrorLen(id, errs []byte) int {
	return len(idPrefix) + len(id) + len(errorMiddle) + len(errs) + 1
}

// CompleteLen returns the length of the message AppendComplete appends.
func CompleteLen(id []byte) int {
	return len(idPrefix) + len(id) + len(completeSuffix)
}

// AppendNext appends the message {"id":<id>,"type":"next","payload":<payload>}.
// id must be a JSON string literal (quotes included) and payload a JSON
// value; both are copied as is.
func AppendNext(dst, id, payload []byte) []byte {
	return appendIDMessage(dst, id, nextMiddle, payload)
}

// AppendError appends the error message for id with errs, a JSON array of
// GraphQL errors.
func AppendError(dst, id, errs []byte) []byte {
	return appendIDMessage(dst, id, errorMiddle, errs)
}

// AppendComplete appends the complete message for id.
func AppendComplete(dst, id []byte) []byte {
	dst = append(dst, idPrefix...)
	dst = append(dst, id...)
	return append(dst, completeSuffix...)
}

func appendIDMessage(dst, id []byte, middle string, payload []byte) []byte {
	dst = append(dst, idPrefix...)
	dst = append(dst, id...)
	dst = append(dst, middle...)
	dst = append(dst, payload...)
	return append(dst, '}')
}
