package oauth

import (
	"errors"
	"slices"
	"testing"
)

func TestParseScope(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr bool
	}{
		{"empty", "", nil, false},
		{"only spaces", "   ", nil, false},
		{"one", "openid", []string{"openid"}, false},
		{"several", "openid email read:orders", []string{"openid", "email", "read:orders"}, false},
		{"duplicates removed in order", "b a b c a", []string{"b", "a", "c"}, false},
		{"extra spaces tolerated", "  a   b ", []string{"a", "b"}, false},
		{"all allowed punctuation", "!#$%&'()*+,-./:;<=>?@[]^_`{|}~", []string{"!#$%&'()*+,-./:;<=>?@[]^_`{|}~"}, false},
		{"case sensitive", "Read read", []string{"Read", "read"}, false},
		{"double quote", `a "b"`, nil, true},
		{"backslash", `a\b`, nil, true},
		{"tab", "a\tb", nil, true},
		{"newline", "a\nb", nil, true},
		{"non-ascii", "lesen schreiben größe", nil, true},
		{"DEL", "a\x7f", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseScope(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidScope) {
					t.Fatalf("ParseScope(%q) error = %v, want invalid_scope", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseScope(%q) error = %v", tt.in, err)
			}
			if !slices.Equal(got, tt.want) || (tt.want == nil) != (got == nil) {
				t.Errorf("ParseScope(%q) = %#v, want %#v", tt.in, got, tt.want)
			}
		})
	}
}

func TestIsScopeToken(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"openid", true},
		{"read:orders", true},
		{"https://api.example/read", true},
		{"", false},
		{"a b", false},
		{`a"`, false},
		{`a\`, false},
		{"é", false},
	}
	for _, tt := range tests {
		if got := IsScopeToken(tt.in); got != tt.want {
			t.Errorf("IsScopeToken(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestFormatScope(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"openid"}, "openid"},
		{[]string{"openid", "email", "read"}, "openid email read"},
	}
	for _, tt := range tests {
		if got := FormatScope(tt.in); got != tt.want {
			t.Errorf("FormatScope(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if back, _ := ParseScope(FormatScope(tt.in)); !slices.Equal(back, tt.in) {
			t.Errorf("ParseScope(FormatScope(%q)) = %q", tt.in, back)
		}
	}
}

func TestHasScope(t *testing.T) {
	granted := []string{"openid", "read"}
	tests := []struct {
		want string
		ok   bool
	}{
		{"openid", true},
		{"read", true},
		{"Read", false},
		{"write", false},
		{"", false},
		{"read write", false},
	}
	for _, tt := range tests {
		if got := HasScope(granted, tt.want); got != tt.ok {
			t.Errorf("HasScope(%q, %q) = %v, want %v", granted, tt.want, got, tt.ok)
		}
	}
}

func TestIsSubset(t *testing.T) {
	tests := []struct {
		name       string
		want, have []string
		ok         bool
	}{
		{"empty want", nil, []string{"a"}, true},
		{"both empty", nil, nil, true},
		{"equal", []string{"a", "b"}, []string{"b", "a"}, true},
		{"proper subset", []string{"a"}, []string{"a", "b"}, true},
		{"extra scope", []string{"a", "c"}, []string{"a", "b"}, false},
		{"against nothing", []string{"a"}, nil, false},
	}
	for _, tt := range tests {
		if got := IsSubset(tt.want, tt.have); got != tt.ok {
			t.Errorf("%s: IsSubset(%q, %q) = %v, want %v", tt.name, tt.want, tt.have, got, tt.ok)
		}
	}
}
