package redis

// A pub/sub message of a topic is a header and the payload:
//
//	F1 <offset> <epoch>\n<payload>
//
// offset: decimal, 1 to 2^53 (Lua numbers are doubles); epoch: 1 to
// maxEpochLen characters of [0-9A-Za-z]. The payload is the event's JSON
// as published, which may itself contain newlines: only the first ends
// the header.

// Channel and key prefixes of a topic (see fraised.lua).
const (
	channelPrefix = "fraised:c:"
	metaPrefix    = "fraised:m:"
	streamPrefix  = "fraised:s:"
	probePrefix   = "fraised:probe:"
)

const (
	// maxEpochLen bounds an epoch in a header: fraised makes 10
	// characters; 32 leaves room for epochs made by other tools.
	maxEpochLen = 32
	// maxOffsetDigits bounds the offset: 2^53 has 16 digits.
	maxOffsetDigits = 16
)

// parseMessage splits a message into its position and payload; ok is
// false when msg has no valid header (a message another program put on
// the channel), which the caller counts and drops.
func parseMessage(msg string) (offset uint64, epoch, payload string, ok bool) {
	if len(msg) < 3 || msg[:3] != "F1 " {
		return 0, "", "", false
	}
	i := 3
	for ; i < len(msg) && msg[i] >= '0' && msg[i] <= '9'; i++ {
		if i-3 == maxOffsetDigits {
			return 0, "", "", false
		}
		offset = offset*10 + uint64(msg[i]-'0')
	}
	if i == 3 || i == len(msg) || msg[i] != ' ' || offset == 0 || msg[3] == '0' {
		return 0, "", "", false
	}
	i++
	start := i
	for ; i < len(msg) && isEpochByte(msg[i]); i++ {
		if i-start == maxEpochLen {
			return 0, "", "", false
		}
	}
	if i == start || i == len(msg) || msg[i] != '\n' {
		return 0, "", "", false
	}
	return offset, msg[start:i], msg[i+1:], true
}

func isEpochByte(b byte) bool {
	return b >= '0' && b <= '9' || b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z'
}
