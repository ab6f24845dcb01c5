// Package emailcode sends and checks the 6-digit codes mailed to users, for signing in
// and for confirming sensitive actions. Codes are stored as an HMAC bound to the email
// and the purpose, so a sign-in code can never confirm an account deletion.
package emailcode

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"time"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/views/email"
	"github.com/authgpts/authgpts/views/email/mailer"
)

// TTL is how long a mailed code works.
const TTL = 10 * time.Minute

// DefaultLimits: one code per 30 s per email, 5 per email and 30 per client IP per 15 min.
var DefaultLimits = store.OTPSendLimits{
	ResendAfter: 30 * time.Second,
	Window:      15 * time.Minute,
	PerEmail:    5,
	PerIP:       30,
}

// Purpose says what a code is for; it is bound into the stored hash and picks the mail.
type Purpose string

// Purposes.
const (
	SignIn        Purpose = "sign-in"
	DeleteAccount Purpose = "delete-account"
)

// Codes sends and checks codes.
type Codes struct {
	Store  *store.Store
	Mail   mailer.Mailer
	Hasher oauth.Hasher // keyed with oauth.PurposeOTP
	Limits store.OTPSendLimits
	Now    func() time.Time
}

// ErrNotSent means the mail server refused or could not be reached; nothing is pending.
var ErrNotSent = fmt.Errorf("emailcode: the code could not be mailed")

// Send mails a new code for purpose to addr unless a throttle says no; the verdict tells
// the caller what to show. A sent code replaces any previous one for that email.
func (c *Codes) Send(ctx context.Context, addr, ip string, purpose Purpose) (store.OTPSendVerdict, error) {
	code, err := newCode()
	if err != nil {
		return store.OTPSendVerdict{}, err
	}
	verdict, err := c.Store.ReserveOTPSend(ctx, addr, ip, c.hash(addr, purpose, code), TTL, c.Limits, c.Now())
	if err != nil || !verdict.Allowed {
		return verdict, err
	}
	if err := c.Mail.Send(ctx, message(addr, code, purpose)); err != nil {
		_ = c.Store.CancelOTP(ctx, addr)
		return verdict, fmt.Errorf("%w: %v", ErrNotSent, err)
	}
	return verdict, nil
}

// Check consumes the code when it matches; wrong tries count towards burning it.
func (c *Codes) Check(ctx context.Context, addr string, purpose Purpose, code string) (bool, error) {
	return c.Store.CheckOTP(ctx, addr, c.hash(addr, purpose, code), c.Now())
}

func (c *Codes) hash(addr string, purpose Purpose, code string) []byte {
	return c.Hasher.Hash(string(purpose) + "\x00" + addr + "\x00" + code)
}

var sixDigits = regexp.MustCompile(`^[0-9]{6}$`)

// ParseCode reads a code as people type it (spaces allowed) and reports whether it is
// six digits.
func ParseCode(raw string) (string, bool) {
	code := strings.Join(strings.Fields(raw), "")
	return code, sixDigits.MatchString(code)
}

// newCode draws a uniformly random 6-digit code.
func newCode() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%06d", n.Int64()), nil
}

func message(to, code string, purpose Purpose) mailer.Message {
	subject, text, intro := email.OTPSubject, email.OTPText(code, TTL), "Your sign-in code is"
	if purpose == DeleteAccount {
		subject, text, intro = email.DeleteSubject, email.DeleteText(code, TTL), "Your code to delete your account is"
	}
	var html strings.Builder
	// A render failure of this constant template only costs the HTML alternative.
	if err := email.CodeHTML(intro, code, TTL).Render(context.Background(), &html); err != nil {
		html.Reset()
	}
	return mailer.Message{To: to, Subject: subject, Text: text, HTML: html.String()}
}
