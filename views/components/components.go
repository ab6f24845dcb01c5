// Package components holds the Tailwind primitives pages are built from: fields with
// their labels and errors, buttons, alerts and copyable values.
package components

import "github.com/a-h/templ"

// FieldProps describes one labelled input. Every input has a <label>.
type FieldProps struct {
	ID           string
	Name         string
	Label        string
	Type         string // "text" when empty
	Value        string
	Error        string
	Hint         string
	Placeholder  string
	Autocomplete string
	InputMode    string
	Required     bool
	Class        string // extra classes for the input
	Attributes   templ.Attributes
}

func (p FieldProps) inputType() string {
	if p.Type == "" {
		return "text"
	}
	return p.Type
}

func inputClass(hasError bool) string {
	base := "block w-full rounded-lg border bg-white px-3 py-2 text-sm shadow-sm placeholder:text-slate-400 focus:outline-none focus:ring-2 "
	if hasError {
		return base + "border-red-400 focus:border-red-500 focus:ring-red-200"
	}
	return base + "border-slate-300 focus:border-indigo-500 focus:ring-indigo-200"
}

// ButtonVariant picks a button's colours.
type ButtonVariant int

// Button variants.
const (
	Primary ButtonVariant = iota
	Secondary
	Danger
)

func buttonClass(v ButtonVariant) string {
	base := "inline-flex items-center justify-center gap-2 rounded-lg px-4 py-2 text-sm font-semibold shadow-sm focus:outline-none focus:ring-2 focus:ring-offset-1 disabled:opacity-50 "
	switch v {
	case Secondary:
		return base + "border border-slate-300 bg-white text-slate-700 hover:bg-slate-50 focus:ring-indigo-300"
	case Danger:
		return base + "bg-red-600 text-white hover:bg-red-500 focus:ring-red-300"
	default:
		return base + "bg-indigo-600 text-white hover:bg-indigo-500 focus:ring-indigo-300"
	}
}

// AlertVariant picks an alert's colours.
type AlertVariant int

// Alert variants.
const (
	Info AlertVariant = iota
	Success
	Warning
	Failure
)

func alertClass(v AlertVariant) string {
	base := "rounded-lg border px-4 py-3 text-sm "
	switch v {
	case Success:
		return base + "border-emerald-200 bg-emerald-50 text-emerald-800"
	case Warning:
		return base + "border-amber-200 bg-amber-50 text-amber-900"
	case Failure:
		return base + "border-red-200 bg-red-50 text-red-800"
	default:
		return base + "border-sky-200 bg-sky-50 text-sky-900"
	}
}
