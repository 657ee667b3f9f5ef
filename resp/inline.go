package resp

import "bytes"

// inline parses the inline command line at the start of b.
func (p *Parser) inline(b []byte) ([][]byte, int, error) {
	// A line of MaxBulk bytes, plus its CRLF, fits the window.
	window := b[:min(len(b), p.maxBulk()+2)]
	i := -1
	if p.scanned < len(window) {
		if i = bytes.IndexByte(window[p.scanned:], '\n'); i >= 0 {
			i += p.scanned
		}
	}
	switch {
	case i < 0 && len(window) == p.maxBulk()+2:
		// No line end within the limit: where the line ends is unknown,
		// so the stream cannot be resynchronised (Redis closes too).
		p.scanned, p.next.state = 0, stateSkipLine
		return nil, len(window), errBigInline
	case i < 0:
		p.scanned = len(window)
		return nil, 0, nil
	}
	p.scanned = 0
	line := b[:i]
	if i > 0 && line[i-1] == '\r' {
		line = line[:i-1]
	}
	if len(line) > p.maxBulk() {
		return nil, i + 1, errBigInline
	}
	if err := p.split(line); err != nil {
		return nil, i + 1, err
	}
	if len(p.args) == 0 {
		return nil, i + 1, nil // empty line: skipped
	}
	return p.args, i + 1, nil
}

// split splits an inline command line into p.args the way Redis's
// sdssplitargs does: arguments are separated by blanks; in double quotes the
// escapes \n \r \t \b \a \xHH and \<any> are decoded; in single quotes \' is;
// a closing quote must be followed by a blank or the end of the line.
//
// Two differences, so that JSON can be published unquoted: a quote opens a
// quoted argument only at the start of an argument (sdssplitargs also opens
// one inside a word, which rejects {"a":1}), and a NUL byte is an ordinary
// byte rather than the end of the line.
func (p *Parser) split(line []byte) error {
	p.args = p.args[:0]
	p.scratch = p.scratch[:0]
	for i := 0; ; {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i == len(line) {
			return nil
		}
		if len(p.args) == p.maxArgs() {
			return p.errTooManyArgs()
		}
		arg, next, ok := p.arg(line, i)
		if !ok {
			return errUnbalancedQuotes
		}
		p.args = append(p.args, arg)
		i = next
	}
}

// arg returns the argument at line[i:], the index past it, and false for
// unbalanced quotes. An unquoted argument is a sub-slice of line.
func (p *Parser) arg(line []byte, i int) (arg []byte, next int, ok bool) {
	if q := line[i]; q == '"' || q == '\'' {
		return p.quoted(line, i)
	}
	end := i
	for end < len(line) && !endsWord(line[end]) {
		end++
	}
	return line[i:end:end], end, true
}

// quoted returns the quoted argument at line[i:], and the index past it, or
// false for unbalanced quotes. The argument is a sub-slice of line when it
// holds no backslash, else it is decoded into p.scratch.
func (p *Parser) quoted(line []byte, i int) (arg []byte, next int, ok bool) {
	body := line[i+1:]
	end := bytes.IndexByte(body, line[i])
	if end < 0 || bytes.IndexByte(body[:end], '\\') >= 0 {
		return p.decode(line, i)
	}
	end += i + 1
	if !endsArg(line, end+1) {
		return nil, 0, false
	}
	return line[i+1 : end : end], end + 1, true
}

// decode decodes the quoted argument at line[i:] into p.scratch. It returns
// the argument, the index past it, and false for unbalanced quotes.
func (p *Parser) decode(line []byte, i int) (arg []byte, next int, ok bool) {
	if cap(p.scratch) < len(line) {
		// The decoded arguments of a line are never longer than the line,
		// so the appends below never move earlier arguments.
		p.scratch = make([]byte, 0, len(line))
	}
	out, start, q := p.scratch, len(p.scratch), line[i]
	for i++; i < len(line); i++ {
		c := line[i]
		switch {
		case c == q:
			if !endsArg(line, i+1) {
				return nil, 0, false
			}
			p.scratch = out
			return out[start:len(out):len(out)], i + 1, true
		case q == '"' && c == '\\' && i+3 < len(line) && line[i+1] == 'x' && isHex(line[i+2]) && isHex(line[i+3]):
			out = append(out, unhex(line[i+2])<<4|unhex(line[i+3]))
			i += 3
		case q == '"' && c == '\\' && i+1 < len(line):
			i++
			out = append(out, unescape(line[i]))
		case q == '\'' && c == '\\' && i+1 < len(line) && line[i+1] == '\'':
			i++
			out = append(out, '\'')
		default:
			out = append(out, c)
		}
	}
	return nil, 0, false // no closing quote
}

// endsWord reports whether c ends an unquoted argument.
func endsWord(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n'
}

// endsArg reports whether a closing quote before line[i] ends its argument
// properly: at the end of the line or before a blank.
func endsArg(line []byte, i int) bool {
	return i == len(line) || isSpace(line[i])
}

// isSpace is C's isspace in the C locale.
func isSpace(c byte) bool {
	return c == ' ' || (c >= '\t' && c <= '\r')
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c|0x20 >= 'a' && c|0x20 <= 'f')
}

// unhex returns the value of the hex digit c.
func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c | 0x20 - 'a' + 10
}

// unescape returns the byte that \c stands for inside double quotes.
func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'b':
		return '\b'
	case 'a':
		return '\a'
	}
	return c
}
