package oauth

import (
	"bytes"
	"encoding/json"
	"net/url"
	"unicode/utf8"
)

// MaxParamBytes bounds one request parameter. Nothing the server takes is longer
// (redirect URIs, descriptions and tokens are far shorter), and a bound keeps a hostile
// value out of the database and of any error message that would echo it.
const MaxParamBytes = 16 << 10

// ValidText reports whether s is text the server accepts in a request parameter, a
// form field or a path: valid UTF-8 (RFC 6749 Appendix A: parameters are Unicode,
// UTF-8 encoded), at most MaxParamBytes, and free of control characters (C0 other than
// tab, line feed and carriage return, DEL, C1). PostgreSQL stores no NUL and no invalid
// UTF-8, and control characters have no business in names, IDs or URLs.
//
// It is the one check of request text: oauth.ParseRequestBody, ParseClientCredentials
// and the edge middleware of the pages (web.ValidInput) all use it.
func ValidText(s string) bool {
	if len(s) > MaxParamBytes {
		return false
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf { // ASCII: the common case, byte by byte
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r >= 0x80 && r <= 0x9f {
			return false
		}
		i += size
	}
	return true
}

// InvalidParam returns the name of a parameter whose name or value is not ValidText,
// and whether there is one.
func InvalidParam(v url.Values) (string, bool) {
	for name, vals := range v {
		if !ValidText(name) {
			return "(unnamed)", true
		}
		for _, val := range vals {
			if !ValidText(val) {
				return name, true
			}
		}
	}
	return "", false
}

// clientParams are the parameters that identify or authenticate a client: a bad one is
// invalid_client (RFC 6749 §5.2), any other invalid_request.
var clientParams = map[string]bool{"client_id": true, "client_secret": true, "client_assertion": true, "client_assertion_type": true}

// checkParams answers a form that holds a parameter that is not ValidText.
func checkParams(form url.Values) error {
	name, bad := InvalidParam(form)
	if !bad {
		return nil
	}
	if clientParams[name] {
		return ErrInvalidClient.WithDescription("The " + name + " parameter holds characters that are not accepted.")
	}
	return ErrInvalidRequest.WithDescription("The parameter " + safeParamName(name) + " is too long or holds characters that are not accepted.")
}

// ValidJSONText reports whether a JSON document is valid UTF-8 and every string in it,
// member names included, is ValidText. (encoding/json would otherwise turn invalid
// UTF-8 into U+FFFD silently, and hand over "\u0000" as a NUL byte.)
func ValidJSONText(body []byte) bool {
	if !utf8.Valid(body) {
		return false
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return true // not JSON: the caller's decoding says so
	}
	return validJSONValue(v)
}

func validJSONValue(v any) bool {
	switch t := v.(type) {
	case string:
		return ValidText(t)
	case []any:
		for _, e := range t {
			if !validJSONValue(e) {
				return false
			}
		}
	case map[string]any:
		for k, e := range t {
			if !ValidText(k) || !validJSONValue(e) {
				return false
			}
		}
	}
	return true
}

// Truncate cuts s to at most n bytes, at a character boundary, for a value quoted in a
// log line or an error message.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
