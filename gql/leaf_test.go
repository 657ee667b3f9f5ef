package gql

import (
	"strings"
	"testing"
)

func TestPlainLeafEnds(t *testing.T) {
	tests := []struct {
		kind leafKind
		in   string
		want int
	}{
		{leafString, `"abc",`, 5}, {leafString, `""`, 2}, {leafString, `"0123456789abcdef012"}`, 21},
		{leafString, `"a\"b"`, -1}, {leafString, `"é"`, -1}, {leafString, "\"a\x01\"", -1}, {leafString, `"unterminated`, -1},
		{leafString, `"0123456789abcdef\n"`, -1}, {leafString, `"0123456789abcdefé"`, -1}, {leafString, `12`, -1},
		{leafID, `"u-42"}`, 6}, {leafCustom, `"x"`, 3}, {leafEnum, `"ACTIVE"`, -1},
		{leafInt, `0,`, 1}, {leafInt, `-12}`, 3}, {leafInt, `2147483647`, 10}, {leafInt, `-2147483648`, 11},
		{leafInt, `2147483648`, -1}, {leafInt, `-2147483649`, -1}, {leafInt, `12345678901`, -1}, {leafInt, `-0`, -1},
		{leafInt, `01`, -1}, {leafInt, `1.0`, -1}, {leafInt, `1e2`, -1}, {leafInt, `-`, -1}, {leafInt, `"1"`, -1},
		{leafFloat, `1732740000.123,`, 14}, {leafFloat, `-0.5]`, 4}, {leafFloat, `0`, 1}, {leafFloat, `7`, 1},
		{leafFloat, `1e3`, -1}, {leafFloat, `1.`, -1}, {leafFloat, `01`, 1}, {leafFloat, `-`, -1}, {leafFloat, `.5`, -1},
		{leafFloat, "1" + strings.Repeat("0", 400), -1},
		{leafBoolean, `true,`, 4}, {leafBoolean, `false`, 5}, {leafBoolean, `tru`, -1}, {leafBoolean, `1`, -1},
	}
	for _, tt := range tests {
		if got := plainLeafEnd(tt.kind, tt.in, 0); got != tt.want {
			t.Errorf("plainLeafEnd(%d, %q) = %d, want %d", tt.kind, tt.in, got, tt.want)
		}
	}
}
