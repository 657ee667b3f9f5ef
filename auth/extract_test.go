package auth

import "testing"

func TestTokenFromInitPayload(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		key     string
		want    string
		ok      bool
	}{
		{"bearer", `{"authorization":"Bearer abc.def.ghi"}`, "", "abc.def.ghi", true},
		{"scheme case", `{"authorization":"bEaReR  abc"}`, "", "abc", true},
		{"bare token", `{"authorization":"abc.def.ghi"}`, "", "abc.def.ghi", true},
		{"capitalised key", `{"Authorization":"Bearer abc"}`, "", "abc", true},
		{"exact key wins", `{"Authorization":"Bearer wrong","authorization":"Bearer right"}`, "", "right", true},
		{"custom key", `{"token":"abc","authorization":"Bearer other"}`, "token", "abc", true},
		{"custom key with dots", `{"x.token":"abc"}`, "x.token", "abc", true},
		{"escaped value", `{"authorization":"Bearer a\u002eb"}`, "", "a.b", true},
		{"basic scheme", `{"authorization":"Basic dXNlcjpwdw=="}`, "", "", false},
		{"bearer without token", `{"authorization":"Bearer "}`, "", "", false},
		{"two words", `{"authorization":"Bearer a b"}`, "", "", false},
		{"number", `{"authorization":12}`, "", "", false},
		{"nested only", `{"headers":{"authorization":"Bearer a"}}`, "", "", false},
		{"missing", `{"other":"x"}`, "", "", false},
		{"array", `["authorization","Bearer a"]`, "", "", false},
		{"invalid JSON", `{"authorization":"Bearer a"`, "", "", false},
		{"empty", ``, "", "", false},
		{"null", `null`, "", "", false},
		{"control char", `{"authorization":"Bearer a\u0000b"}`, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := TokenFromInitPayload([]byte(tt.payload), tt.key)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("got %q %v, want %q %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestTokenFromInitPayloadCopies(t *testing.T) {
	buf := []byte(`{"authorization":"Bearer abc"}`)
	got, _ := TokenFromInitPayload(buf, "")
	copy(buf, "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXX")
	if got != "abc" {
		t.Fatalf("token aliases the payload buffer: %q", got)
	}
}

func TestTokenFromHeader(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"BEARER   abc  ", "abc", true},
		{"abc", "", false},
		{"Basic abc", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Bearer a b", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		if got, ok := TokenFromHeader(tt.in); got != tt.want || ok != tt.ok {
			t.Errorf("TokenFromHeader(%q) = %q %v, want %q %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestTokenFromCookie(t *testing.T) {
	tests := []struct {
		header, name string
		want         string
		ok           bool
	}{
		{"token=abc", "token", "abc", true},
		{"a=1; token=abc; b=2", "token", "abc", true},
		{"a=1;token=abc", "token", "abc", true},
		{`token="abc"`, "token", "abc", true},
		{"mytoken=abc", "token", "", false},
		{"token=", "token", "", false},
		{"token", "token", "", false},
		{"token=abc", "", "", false},
		{"", "token", "", false},
		{"token=a b", "token", "", false},
	}
	for _, tt := range tests {
		if got, ok := TokenFromCookie(tt.header, tt.name); got != tt.want || ok != tt.ok {
			t.Errorf("TokenFromCookie(%q, %q) = %q %v, want %q %v", tt.header, tt.name, got, ok, tt.want, tt.ok)
		}
	}
}
