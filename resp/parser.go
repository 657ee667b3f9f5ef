// Package resp reads the Redis protocol spoken by publishers and writes its
// replies.
//
// Parser slices commands (RESP arrays of bulk strings, or inline commands)
// out of the bytes a connection has received so far, without copying,
// blocking or allocating per command. The Append functions encode replies and
// commands into a caller-owned buffer.
package resp

import "bytes"

// Limits. A zero Parser field means the Default constant.
const (
	// DefaultMaxBulk is the default limit, in bytes, of a bulk string and of
	// an inline command line: 1 MiB is ample for one JSON event and bounds
	// what a connection buffers for one argument.
	DefaultMaxBulk = 1 << 20
	// DefaultMaxArgs is the default limit on arguments per command: PUBLISH
	// takes 3, and 16 leaves room for every other command a publisher sends.
	DefaultMaxArgs = 16

	// maxMaxBulk caps MaxBulk, keeping length arithmetic far from overflow;
	// Redis's own default limit is half of it.
	maxMaxBulk = 1 << 30
	// maxArrayLen is the largest array header accepted (and skipped if over
	// MaxArgs); larger ones are invalid, as for unauthenticated Redis clients.
	maxArrayLen = 1 << 20
	// maxHeaderLine is the longest "*<n>\r" or "$<n>\r" line accepted before
	// its '\n'; a valid one is at most 21 bytes.
	maxHeaderLine = 32
	// maxLenDigits is the most digits in a valid length: 18 digits cannot
	// overflow an int64, even with the 2 bytes of a CRLF added.
	maxLenDigits = 18
	// maxKeptScratch is the largest inline unescape buffer kept between
	// commands, so that one big quoted command does not pin its buffer for the
	// life of the connection.
	maxKeptScratch = 4 << 10
	// skipFactor bounds what the parser skips to stay in sync after a
	// payload over MaxBulk: a command whose bulk strings add up to more than
	// skipFactor times MaxBulk is not an honest event that grew a little too
	// big but a broken or hostile client (a "$999999999999" header would
	// otherwise swallow the next terabyte), so it is a protocol error and
	// the connection is to be closed, as Redis does for a bulk length over
	// its proto-max-bulk-len.
	skipFactor = 16
)

// state says what the parser is doing at the start of the next Next call.
type state uint8

const (
	stateCommand   state = iota // at the start of a command
	stateSkipLine               // discarding up to and including the next '\n'
	stateSkipArray              // discarding p.skip bytes, then p.skipArgs bulk strings
)

// progress is the parser's position in the stream: what the next byte
// passed to Next means.
type progress struct {
	state    state
	skip     int64 // stateSkipArray: bytes left of the bulk string being skipped
	skipArgs int64 // stateSkipArray: bulk strings left to skip after it
	skipped  int64 // stateSkipArray: bulk bytes of the rejected command so far
}

// Parser reads pipelined Redis commands from a byte stream: RESP arrays of
// bulk strings, and inline commands split by blanks with Redis's quoting
// (sdssplitargs), except that a quote is special only at the start of an
// argument, so `PUBLISH t {"a":1}` and `PUBLISH t '{"a": 1}'` both work.
//
// Set the limits before the first call and leave them alone afterwards. The
// zero value is ready to use. A Parser is not safe for concurrent use: use one
// per connection. It holds a few words of state plus the argument slice and
// the inline unescape buffer it reuses.
//
// State advances only with bytes actually consumed: Next computes where the
// stream will be after its n bytes, and Commit makes that the parser's
// position once the caller has discarded them. A caller that cannot act on a
// command yet (no room for its event) keeps the bytes and calls Next again
// on them later, without Commit, and gets the same result.
type Parser struct {
	// MaxBulk is the limit, in bytes, of one bulk string and of an inline
	// command line (CRLF excluded); 0 means DefaultMaxBulk, and values over
	// 1 GiB mean 1 GiB.
	MaxBulk int
	// MaxArgs is the limit on arguments per command; 0 means DefaultMaxArgs.
	MaxArgs int

	done    progress // position at the start of the bytes not yet consumed
	next    progress // position after the bytes the last Next returned
	scanned int      // inline command: b[:scanned] holds no '\n'
	args    [][]byte // reused result of Next
	scratch []byte   // unescaped quoted inline arguments
}

// Next parses the next command at the start of b, the bytes received and not
// yet consumed. It returns the command's arguments and n, the number of bytes
// of b to discard before the next call:
//
//   - args != nil: one command of n bytes. The arguments are sub-slices of b
//     (capacity-limited; valid while b is), except quoted inline arguments
//     with escapes, which live in the parser and are valid until the next call.
//     args itself is reused by the next call.
//   - n == 0, err == nil: b holds only part of a command (or nothing). Call
//     again with the same bytes and more appended; the parser may remember how
//     far it searched b, so do not change the bytes already passed.
//   - n > 0, args == nil, err == nil: n bytes that hold no command (an empty
//     line or array, or part of a rejected command being skipped); discard
//     them and call again.
//   - err != nil: one rejected command, an *Error whose text is the reply for
//     the client (see AppendError); n > 0. Discard n bytes and call again.
//     For ErrTooLarge and ErrTooManyArgs the rest of the command is skipped by
//     the following calls, without buffering it, so the stream stays in sync.
//     ErrProtocol means the stream cannot be trusted any more: the caller
//     must answer and close the connection, as Redis does (bytes after a
//     malformed header may be the payload of a command it hid, and parsing
//     them as commands would run that command). If it goes on, only the
//     malformed line (or bulk string) is skipped.
//
// Whenever n > 0, the parser's position moves past those n bytes only when
// the caller calls Commit after discarding them. Until then Next may be
// called again on the same bytes (more may be appended) and returns the same
// result. Next does not allocate, except for errors of a non-default limit.
func (p *Parser) Next(b []byte) (args [][]byte, n int, err error) {
	if cap(p.scratch) > maxKeptScratch {
		p.scratch = nil
	}
	p.next = p.done
	switch {
	case p.next.state == stateSkipLine:
		return nil, p.skipLine(b), nil
	case p.next.state == stateSkipArray:
		n, err = p.skipArray(b)
		return nil, n, err
	case len(b) == 0:
		return nil, 0, nil
	case b[0] == '*':
		return p.multibulk(b)
	default:
		return p.inline(b)
	}
}

// Commit moves the parser past the n bytes the last Next call returned; call
// it after discarding them. Calling it again, or after a Next that returned
// n == 0, changes nothing.
func (p *Parser) Commit() {
	p.done = p.next
}

// Partial reports whether the parser is in the middle of a command: one it
// is skipping (rejected, too large) whose remaining bytes have not all been
// consumed yet.
func (p *Parser) Partial() bool {
	return p.done.state != stateCommand
}

// multibulk parses the RESP array of bulk strings at the start of b.
func (p *Parser) multibulk(b []byte) ([][]byte, int, error) {
	line, pos, err := p.headerLine(b, 0, errBigMultibulk)
	if err != nil || pos == 0 {
		return nil, pos, err
	}
	count, ok := parseLen(line[1:])
	switch {
	case !ok || count > maxArrayLen:
		return nil, pos, errMultibulkLen
	case count <= 0:
		return nil, pos, nil // empty or null array: skipped, as by Redis
	case count > int64(p.maxArgs()):
		p.startSkip(0, count)
		return nil, pos, p.errTooManyArgs()
	}
	p.args = p.args[:0]
	for i := range count {
		size, data, err := p.bulkHeader(b, pos)
		if err != nil || data == 0 {
			return nil, data, err
		}
		if size > int64(p.maxBulk()) {
			if size > p.skipLimit() {
				return nil, data, errBulkLen
			}
			p.startSkip(size+2, count-i-1)
			p.next.skipped = size
			return nil, data, p.errTooLarge()
		}
		end := data + int(size)
		if len(b) < end+2 {
			return nil, 0, nil
		}
		if b[end] != '\r' || b[end+1] != '\n' {
			return nil, end + 2, errBadCRLF
		}
		p.args = append(p.args, b[data:end:end])
		pos = end + 2
	}
	return p.args, pos, nil
}

// bulkHeader parses the "$<size>\r\n" line at b[pos:]. It returns the size
// and the index past the line; that index is 0 when the line is incomplete,
// and the number of bytes to discard with an error.
func (p *Parser) bulkHeader(b []byte, pos int) (size int64, end int, err error) {
	line, end, err := p.headerLine(b, pos, errBigBulkCount)
	if err != nil || end == 0 {
		return 0, end, err
	}
	if b[pos] != '$' {
		return 0, end, expectedDollarError(b[pos])
	}
	size, ok := parseLen(line[1:])
	if !ok || size < 0 {
		return 0, end, errBulkLen
	}
	return size, end, nil
}

// headerLine returns the CRLF-terminated header line at b[pos:], without its
// CRLF, and the index past it; that index is 0 when the line is incomplete.
// A line too long to be a header is rejected with tooBig: the bytes examined
// are to be discarded, and the parser then skips the rest of the line.
func (p *Parser) headerLine(b []byte, pos int, tooBig *Error) (line []byte, end int, err error) {
	window := b[pos:min(len(b), pos+maxHeaderLine+1)]
	i := bytes.IndexByte(window, '\n')
	switch {
	case i < 0 && len(window) > maxHeaderLine:
		p.next.state = stateSkipLine
		return nil, pos + len(window), tooBig
	case i < 0:
		return nil, 0, nil
	case i == 0 || window[i-1] != '\r':
		return nil, pos + i + 1, errBadCRLF
	}
	return window[:i-1], pos + i + 1, nil
}

// parseLen parses a protocol length as Redis's string2ll does: an optional
// '-', then "0" or digits without a leading zero.
func parseLen(s []byte) (int64, bool) {
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	if len(s) == 0 || len(s) > maxLenDigits || (s[0] == '0' && (len(s) > 1 || neg)) {
		return 0, false
	}
	var v int64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		return -v, true
	}
	return v, true
}

// startSkip rejects the rest of an array: skip bytes of a bulk string, then
// args whole bulk strings.
func (p *Parser) startSkip(skip, args int64) {
	p.next = progress{state: stateSkipArray, skip: skip, skipArgs: args}
}

// skipArray discards the next part of a rejected array: bytes of the bulk
// string being skipped, or the header of the next one. A rejected command
// whose bulk strings add up to more than skipLimit is a protocol error.
func (p *Parser) skipArray(b []byte) (int, error) {
	n := 0
	s := &p.next
	if s.skip > 0 {
		n = int(min(s.skip, int64(len(b))))
		s.skip -= int64(n)
	} else {
		size, end, err := p.bulkHeader(b, 0)
		if err == nil && end > 0 && s.skipped+size > p.skipLimit() {
			err = errBulkLen
		}
		if err != nil {
			if s.state == stateSkipArray {
				*s = progress{}
			}
			return end, err
		}
		if end == 0 {
			return 0, nil
		}
		n, s.skip, s.skipArgs, s.skipped = end, size+2, s.skipArgs-1, s.skipped+size
	}
	if s.skip == 0 && s.skipArgs == 0 {
		*s = progress{}
	}
	return n, nil
}

// skipLine discards bytes up to and including the next '\n'.
func (p *Parser) skipLine(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return len(b)
	}
	p.next.state = stateCommand
	return i + 1
}

// skipLimit is the most bulk bytes of one rejected command the parser skips
// to stay in sync; see skipFactor.
func (p *Parser) skipLimit() int64 {
	return skipFactor * int64(p.maxBulk())
}

func (p *Parser) maxBulk() int {
	if p.MaxBulk <= 0 {
		return DefaultMaxBulk
	}
	return min(p.MaxBulk, maxMaxBulk)
}

func (p *Parser) maxArgs() int {
	if p.MaxArgs <= 0 {
		return DefaultMaxArgs
	}
	return p.MaxArgs
}

// errTooLarge returns the error for a payload over MaxBulk; it allocates
// only for a non-default limit.
func (p *Parser) errTooLarge() *Error {
	if p.maxBulk() == DefaultMaxBulk {
		return errTooLargeDefault
	}
	return tooLargeError(p.maxBulk())
}

// errTooManyArgs returns the error for a command over MaxArgs; it allocates
// only for a non-default limit.
func (p *Parser) errTooManyArgs() *Error {
	if p.maxArgs() == DefaultMaxArgs {
		return errTooManyDefault
	}
	return tooManyArgsError(p.maxArgs())
}
