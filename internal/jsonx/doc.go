// Package jsonx reads and writes raw JSON text without allocating: the one
// JSON scanner and string encoder of fraised, used by gql (projection and
// errors), codec (the ids and reasons the server quotes) and audit (log
// lines).
//
// # Reading
//
// Values are returned as sub-strings of the input ("raw" values, strings
// still quoted and escaped) and are never decoded: projection copies them.
// gjson is not used on the event path because every gjson.Result it builds
// for an escaped string carries an unescaped copy, one allocation per such
// string; this reader never needs one. Functions take the text and an
// index and return the index just past what they read, or -1.
//
// The reader validates what it returns: strings end at an unescaped quote,
// numbers follow the JSON grammar, literals are exact. Containers are
// skipped by bracket counting; their members are only checked when
// iterated (Members, Elements). Input that stops being JSON ends an
// iteration as if the container ended there.
//
// # Writing
//
// Encoders append to the caller's buffer (AppendString, AppendRawString,
// AppendJSNumber) and allocate only to grow it. Their output is always
// valid JSON and valid UTF-8, whatever the input: invalid UTF-8 becomes
// U+FFFD. AppendString escapes quotes, backslashes, control characters and
// U+2028/U+2029 (as encoding/json does: the two are line terminators to
// JavaScript before ES2019 and to some log readers, so a string never
// splits a line). AppendRawString copies an event's already-escaped string
// as it is when it is valid, so a publisher's bytes reach subscribers
// unchanged.
//
// Every function is safe for concurrent use; none keeps its arguments.
package jsonx
