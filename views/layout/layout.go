// Package layout holds the page shells: Base owns <head> and asset URLs, App is the
// signed-in chrome, Auth is the centred card used by sign-in and consent pages.
package layout

// htmxConfig keeps htmx within our CSP (no injected styles, no eval) and lets 422
// validation answers swap their form partial while other errors raise a toast.
const htmxConfig = `{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"responseHandling":[{"code":"204","swap":false},{"code":"[23]..","swap":true},{"code":"422","swap":true},{"code":"[45]..","swap":false,"error":true}]}`

// Chrome is what the signed-in layout needs to know about the viewer.
type Chrome struct {
	Title     string
	UserEmail string
	IsAdmin   bool
	Active    string // "dashboard", "account" or "admin": the highlighted nav entry
}

// ErrorVM is a readable error page.
type ErrorVM struct {
	Status    int
	Message   string
	Hint      string
	RequestID string
}

func navClass(active bool) string {
	if active {
		return "rounded-md bg-slate-100 px-3 py-2 text-sm font-medium text-slate-900"
	}
	return "rounded-md px-3 py-2 text-sm font-medium text-slate-600 hover:bg-slate-50 hover:text-slate-900"
}
