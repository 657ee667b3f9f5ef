package gql

import (
	"math"
	"testing"
)

func TestJSNumber(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"12", 12, true}, {" \t12\n", 12, true}, {"", 0, true}, {"   ", 0, true}, {"1e3", 1000, true}, {".5", 0.5, true},
		{"5.", 5, true}, {"+1", 1, true}, {"-1.5", -1.5, true}, {"0x1F", 31, true}, {"0b101", 5, true}, {"0o17", 15, true},
		{"Infinity", math.Inf(1), true}, {"-Infinity", math.Inf(-1), true}, {"1e999", math.Inf(1), true},
		{"abc", 0, false}, {"1_0", 0, false}, {"-0x10", 0, false}, {"inf", 0, false}, {"NaN", 0, false}, {"1e", 0, false},
		{".", 0, false}, {"0x", 0, false}, {"0xG", 0, false}, {"1 2", 0, false},
	}
	for _, tt := range tests {
		got, ok := jsNumber(tt.in)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("jsNumber(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
