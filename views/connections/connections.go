// Package connections holds the pages of the connect flow: the end of a popup connect,
// which reports to the page that opened it (static/app.js) and closes.
package connections

// ResultVM is the outcome of a connect flow.
type ResultVM struct {
	OK       bool
	Provider string // the provider slug, for the opener
	Name     string // the provider's display name
	Message  string
	Hint     string
	// Origin is the AuthGPTs base URL's origin: the only origin the result is posted to.
	Origin   string
	ReturnTo string // where the "Continue" link goes when there is no opener
}

// Status is "connected" or "error", as posted to the opener.
func (vm ResultVM) Status() string {
	if vm.OK {
		return "connected"
	}
	return "error"
}
