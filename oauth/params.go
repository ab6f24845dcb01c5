package oauth

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
)

// MaxRequestBody bounds the body of a token, introspection or revocation request.
const MaxRequestBody = 64 << 10

// ParseRequestBody reads the parameters of a POST to the token, introspection or
// revocation endpoint: application/x-www-form-urlencoded as RFC 6749 §3.2 says, or a
// flat JSON object of strings and numbers, which some clients send. Query-string
// parameters are ignored (they may hold secrets in server logs, RFC 6749 §3.2 uses the
// body). A parameter sent more than once is invalid_request (RFC 6749 §3.1, §3.2), and so
// is one that is not ValidText (invalid_client for the client's own parameters).
//
// The caller bounds the body (http.MaxBytesReader); a body over the bound is
// invalid_request.
func ParseRequestBody(r *http.Request) (url.Values, error) {
	if r.Method != http.MethodPost {
		return nil, ErrInvalidRequest.WithDescription("Use POST.")
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/x-www-form-urlencoded":
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, bodyError(err)
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, ErrInvalidRequest.WithDescription("The form body is malformed.")
		}
		for name, vs := range form {
			if len(vs) > 1 {
				return nil, ErrInvalidRequest.WithDescription("The parameter " + safeParamName(name) + " is repeated.")
			}
		}
		if err := checkParams(form); err != nil {
			return nil, err
		}
		return form, nil
	case "application/json":
		var obj map[string]json.RawMessage
		dec := json.NewDecoder(r.Body)
		if err := dec.Decode(&obj); err != nil {
			return nil, bodyError(err)
		}
		form := make(url.Values, len(obj))
		for name, raw := range obj {
			var s string
			if err := json.Unmarshal(raw, &s); err == nil {
				form.Set(name, s)
				continue
			}
			var n json.Number
			if err := json.Unmarshal(raw, &n); err == nil {
				form.Set(name, n.String())
				continue
			}
			return nil, ErrInvalidRequest.WithDescription("The JSON parameter " + safeParamName(name) + " must be a string.")
		}
		if err := checkParams(form); err != nil {
			return nil, err
		}
		return form, nil
	default:
		return nil, ErrInvalidRequest.WithDescription("Send the parameters as application/x-www-form-urlencoded.")
	}
}

func bodyError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return ErrInvalidRequest.WithDescription("The request body is larger than " + strconv.Itoa(MaxRequestBody/1024) + " KiB.")
	}
	return ErrInvalidRequest.WithDescription("The request body could not be read.")
}

// safeParamName returns name when it is a short plain parameter name, so that it can be
// echoed in an error description, and "(unnamed)" otherwise.
func safeParamName(name string) string {
	if len(name) == 0 || len(name) > 40 {
		return "(unnamed)"
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return "(unnamed)"
		}
	}
	return name
}
