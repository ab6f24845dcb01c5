// Package email renders the bodies of the mail AuthGPTs sends, and the development
// mailbox page that shows them when no SMTP server is configured.
package email

import (
	"fmt"
	"time"
)

// OTPSubject is the subject of the sign-in code mail.
const OTPSubject = "Your AuthGPTs sign-in code"

// OTPText is the plain-text body of the sign-in code mail.
func OTPText(code string, ttl time.Duration) string {
	return fmt.Sprintf("Your AuthGPTs sign-in code is %s\n\nIt works for %d minutes. If you did not ask for it, ignore this mail: nobody can sign in without the code.\n", code, int(ttl.Minutes()))
}

// DeleteSubject is the subject of the account-deletion confirmation mail.
const DeleteSubject = "Confirm deleting your AuthGPTs account"

// DeleteText is the plain-text body of the account-deletion confirmation mail.
func DeleteText(code string, ttl time.Duration) string {
	return fmt.Sprintf("Your code to delete your AuthGPTs account is %s\n\nIt works for %d minutes. If you did not ask to delete your account, ignore this mail and consider signing out everywhere from your account page.\n", code, int(ttl.Minutes()))
}

// DevMessage is one mail kept in the development mailbox.
type DevMessage struct {
	To      string
	Subject string
	Text    string
	SentAt  time.Time
}

// LinkedText is the mail that tells a person two of their sign-in identities were
// linked.
func LinkedText(a, b string, at time.Time, accountURL string) string {
	return "The sign-in identities " + a + " and " + b + " were linked on " + at.UTC().Format("January 2, 2006 at 15:04 UTC") +
		".\n\nSigned in with an email code or GitHub, your account page now manages the connected apps, keys and linked accounts of both." +
		"\n\nIf this was not you, sign in and unlink the identity you do not know: " + accountURL + "\n"
}
